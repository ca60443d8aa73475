"""The simulator behind ``elastiq simulate``: replay a workload in virtual time.

- :mod:`.workload`: jobs to replay (Standard Workload Format traces, or a synthetic workload);
- :mod:`.cloud` and :mod:`.pool`: the simulated cloud and HTCondor pool (the two ports);
- :mod:`.world`: those ports as the runtime sees them, with the negotiator and an action log;
- :mod:`.engine`: the virtual-time loop: the daemon's own Runtime and Scheduler on a virtual clock;
- :mod:`.metrics`: VM-hours, waits and safety counters; :mod:`.report`: the picture;
- :mod:`.peers`: the field's policies (COBalD/TARDIS, cluster-autoscaler) to compare with;
  :mod:`.compare`: their results side by side.
"""
