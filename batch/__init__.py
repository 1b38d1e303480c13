"""Batch diagnosis of a whole class of labs, with history.

    labs.py     which labs a command names (folders, inventory files, --class DIR) and
                their evidence, read once, with its digest
    run.py      one lab's diagnosis as plain data (the worker), and the batch over local
                processes or a Dask cluster, with progress and interruption
    history.py  every run in SQLite (sqlite-utils): runs, labs, findings; what changed
                since the previous run of the same labs
    command.py  ``python app.py batch`` and ``python app.py history``

The flow stays one way: evidence -> kb (diagnose, walk) -> lab results -> report/.
"""
