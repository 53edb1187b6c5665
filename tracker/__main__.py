"""``python -m tracker``: the ``callwatch`` command line, for a checkout or an environment
where the console script is not on PATH."""

from tracker.cli import main

main()
