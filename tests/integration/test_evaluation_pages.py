"""The dashboard's evaluation history of a model version, in a signed-in browser session."""

from __future__ import annotations

import numpy as np
import pytest

from mlsys.evaluation.pipeline import run_evaluation
from mlsys.evaluation.spec import EvaluateSpec
from mlsys.ids import TableId
from mlsys.settings import Settings
from mlsys.warehouse import open_warehouse
from tests.integration.test_ui_pages import _sign_in, served  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PAGE = "/ui/models/titanic-survival/versions/v1/evaluations?env=dev"


def _evaluate_with_flipped_outcomes(home) -> None:
    """The demo's predictions against outcomes that disagree with most of them."""
    settings = Settings(_env_file=None, MLSYS_HOME=str(home))
    warehouse = open_warehouse(settings=settings)
    project = settings.gcp_project_id
    predictions = warehouse.read_table(TableId(project, "titanic", "predictions")).to_pandas()
    outcomes = predictions[["PassengerId", "Survived"]].copy()
    flip = np.arange(len(outcomes)) % 10 < 6
    outcomes.loc[flip, "Survived"] = 1 - outcomes.loc[flip, "Survived"]
    labels = TableId(project, "titanic", "outcomes")
    warehouse.write(outcomes, labels, "WRITE_TRUNCATE")
    spec = EvaluateSpec.parse(
        env="dev",
        output_table=str(TableId(project, "titanic", "predictions")),
        labels_table=str(labels),
        days=1,
        settings=settings,
    )
    run_evaluation(spec, warehouse, settings, "ui-evaluation")
    warehouse.close()


def test_a_versions_evaluations_show_each_day_against_its_promise(served, tmp_path):  # noqa: F811
    url, _ = served
    browser = _sign_in(url)
    empty = browser.get(url + PAGE)
    _evaluate_with_flipped_outcomes(tmp_path / "home")

    page = browser.get(url + PAGE)
    version_page = browser.get(f"{url}/ui/models/titanic-survival/versions/v1?env=dev")
    models = browser.get(f"{url}/ui/models?env=dev")

    assert empty.status_code == 200 and "No evaluations of this version yet" in empty.text
    assert page.status_code == 200, page.text
    assert "Evaluations of titanic-survival v1" in page.text
    assert 'data-status="degraded"' in page.text and "1 degraded" in page.text
    assert '<circle cx="50.0"' in page.text and 'class="promise"' in page.text
    assert "accuracy" in page.text and "ui-evaluation"[:8] in page.text
    assert "/ui/models/titanic-survival/versions/v1/evaluations" in models.text
    # The version page carries the same history in its Evaluations section.
    assert version_page.status_code == 200, version_page.text
    section = version_page.text.partition('id="evaluations"')[2]
    assert 'data-status="degraded"' in section and 'class="promise"' in section
