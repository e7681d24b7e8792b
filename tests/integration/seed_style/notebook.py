"""A notebook in the seed's style (titanic-survival-example): its cells, as nbformat builds
them. Imports the seed's names; trains; saves model.pkl + the seed's metadata.json keys."""

import nbformat

CELLS = [
    """\
import json

import matplotlib.pyplot as plt
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from mlsys.bq import bq_get
from mlsys.gcs import gcs_list_blobs, gcs_put, gcs_put_pickle
from mlsys.settings import GCP_PROJECT_ID, GCS_BUCKET_MODELS_DEV
from mlsys.vis import setup_plot_style

setup_plot_style()""",
    """\
df = bq_get(f"SELECT * FROM `{GCP_PROJECT_ID}.titanic.train`")
df.head()""",
    """\
fig, ax = plt.subplots()
df.groupby("Pclass")["Survived"].mean().plot.bar(ax=ax, title="Survival rate by class")
plt.show()""",
    """\
features = ["Pclass", "SibSp", "Parch", "Fare"]
X, y = df[features], df["Survived"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
model = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=42)
model.fit(X_train, y_train)
test_accuracy = accuracy_score(y_test, model.predict(X_test))
test_roc_auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
print(f"accuracy {test_accuracy:.3f}, ROC AUC {test_roc_auc:.3f}")""",
    """\
model_path = "titanic-survival/v1/model.pkl"
gcs_put_pickle(model, GCS_BUCKET_MODELS_DEV, model_path)
metadata = {
    "model_type": "RandomForestClassifier",
    "features": features,
    "target": "Survived",
    "test_accuracy": test_accuracy,
    "test_roc_auc": test_roc_auc,
    "hyperparameters": {"n_estimators": 30, "max_depth": 5},
    "gcs_path": f"gs://{GCS_BUCKET_MODELS_DEV}/{model_path}",
}
gcs_put(json.dumps(metadata, indent=2), GCS_BUCKET_MODELS_DEV, "titanic-survival/v1/metadata.json")
for blob in gcs_list_blobs(GCS_BUCKET_MODELS_DEV):
    print(blob.name, blob.size, blob.updated, blob.time_created)""",
]


def seed_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    return notebook
