"""HTCondor as the batch system: :mod:`.batch` (the adapter) and :mod:`.bindings` (the only
modules importing ``htcondor2``/``classad2``), the pure readers :mod:`.ads` (jobs,
matchability), :mod:`.groups` (the schedd's groups of jobs), :mod:`.pool` (slots -> workers)
and :mod:`.template` (the worker ad a job is matched against), and :mod:`.config` (the
``htcondor`` section)."""
