"""The simulator behind ``elastiq simulate``: replay a workload in virtual time.

- :mod:`.workload`: jobs to replay (Standard Workload Format traces, or a synthetic workload);
- :mod:`elastiq.adapters.sim`: the simulated cloud and HTCondor pool (the two ports);
- :mod:`.engine`: the virtual-time loop, calling a policy exactly as the daemon does;
- :mod:`.metrics`: VM-hours, waits and safety counters; :mod:`.report`: the picture;
- :mod:`.peers`: the field's policies (COBalD/TARDIS, cluster-autoscaler) to compare with;
  :mod:`.compare`: their results side by side.
"""
