"""The experiment scripts, one per claim (EXPERIMENTS.md). Run one as `python experiments/<name>.py [--quick]`;
the tests import them as `experiments.<name>` (pytest puts the repository root on the path)."""
