"""Slurm as the batch system: :mod:`.batch` (the adapter), :mod:`.cli` (running squeue, scontrol
with their errors translated), the pure readers :mod:`.jobs` (the queue) and :mod:`.nodes` (our
dynamic nodes), and :mod:`.config` (the ``slurm`` section)."""
