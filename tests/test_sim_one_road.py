"""One road: ``elastiq simulate`` and ``elastiq run`` make the same decisions on the same world.

The daemon's road is built here as ``elastiq run`` builds it -- ``build_runtime`` with the
policy named by the configuration, a real state file, the daemon's Scheduler -- against the
simulated adapters, its clock injected and moved from one scheduler moment to the next with
every tick run.  The simulator skips quiet stretches; the launches, drains, cancellations and
terminations that reach the world must be the same, at the same virtual times.
"""
from __future__ import annotations

import pytest

from elastiq import config
from elastiq.sim.cloud import BootDelay
from elastiq.core import POLICIES, get_policy
from elastiq.runtime.scheduler import Scheduler, checks
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import build_runtime
from elastiq.sim import engine
from elastiq.sim.workload import Workload, synthetic
from elastiq.sim.world import World

KNOBS = ["quota.max_vms=10", "vm.cpus=4", "vm.memory_mb=8192", "elastiq.idle_timeout_max_s=600"]


def daemon_road(sim: engine.Simulation, options: engine.SimOptions, state_dir, until: float):
    """The actions the daemon's runtime takes on a fresh copy of the simulation's world (a
    baseline's policy, which the daemon does not run, given as the simulator gives it)."""
    world = World(sim.workload, sim.config, options, engine.EPOCH, sim.catalogue)
    baseline = options.policy if options.policy not in POLICIES else None
    policy = (engine.policy_for(baseline, sim.config) if baseline
              else get_policy(sim.config.elastiq.policy))  # as the daemon's _serve chooses it
    runtime = build_runtime(sim.config, world.batch, world.cloud,
                            StateStore(str(state_dir), policy=policy), clock=world.clock,
                            policy=policy if baseline else None, catalogue=sim.catalogue)
    assert runtime.policy.name == (baseline or sim.config.elastiq.policy)
    scheduler = Scheduler(runtime.tick, checks(sim.config), clock=world.clock)
    scheduler.wake_at(engine.EPOCH, kind="start")  # as Scheduler.start() does
    ticks = 0
    while True:
        t = scheduler.next_moment()
        if t > until:
            return world.actions, ticks
        world.advance(t)
        ticks += scheduler.run_due() is not None
        world.negotiate()


def both_roads(tmp_path, work: Workload, sets=(), **options):
    opts = engine.SimOptions(timeline=False, **options)
    sim = engine.Simulation(work, config.load(None, KNOBS + list(sets)), opts)
    result = sim.run()
    actions, ticks = daemon_road(sim, opts, tmp_path / "state", sim.now)
    return sim, result, actions, ticks


@pytest.mark.parametrize("seed", [0, 3])
def test_simulator_and_daemon_runtime_take_the_same_actions(tmp_path, seed):
    sim, result, actions, ticks = both_roads(tmp_path, synthetic(seed), seed=seed,
                                             boot_delay=BootDelay("uniform", 60, 400))
    kinds = {kind for _, kind, _ in sim.world.actions}
    assert {"launch", "drain", "terminate"} <= kinds  # the workload exercises every road
    assert result["jobs_completed"] == result["jobs"] and result["vms_alive_at_end"] == 0
    assert sim.world.actions == actions
    assert result["ticks"] < ticks / 2  # and the simulator skipped the quiet ticks


def test_same_actions_with_the_legacy_baseline(tmp_path):
    # every tick: the legacy policy's own check cadence does not keep Plan.next_check's
    # contract, so skipping quiet stretches may shift its decisions by a period
    sim, result, actions, _ = both_roads(tmp_path, synthetic(1), policy="legacy", every_tick=True)
    assert result["jobs_completed"] == result["jobs"]
    assert sim.world.actions == actions and actions
