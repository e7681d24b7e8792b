"""`python -m mlsys.cli`: the `mlsys` command (as `python -X importtime -m mlsys.cli --help`)."""

from mlsys.cli.commands import main

main(prog_name="mlsys")
