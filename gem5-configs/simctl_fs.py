# simctl's gem5 full-system configuration (run by gem5.opt, not by Python directly).
#
# One gem5 process per phase:
#   boot    boot Linux on the fast CPU; the guest agent asks for a checkpoint as soon as it is up
#           (before it reads its plan): save it (the boot checkpoint) and stop. It holds no
#           workload, so every workload and design point of an image restores it.
#   warmup  restore the boot checkpoint on the fast CPU with the run's plan as the readfile: the
#           guest reads it, starts the function and warms it up; when the client issues m5
#           checkpoint (end of warm-up) save the warm checkpoint and stop.
#   measure restore the warm checkpoint on the detailed CPU; the client's warming invocations
#           run unmarked, then gem5 resets stats at each measured invocation's workbegin and
#           dumps them at its workend, so stats.txt has one dump per measured invocation.
#   full    no checkpoint: boot, warm up and measure on --cpu in one go (for tests).
# Markers on stdout start with "SIMCTL-GEM5". Exit codes: 0 ok, 1 guest failure, 2 bad input.

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path

import m5
import m5.stats
from gem5.components.boards.x86_board import X86Board
from gem5.components.cachehierarchies.classic.private_l1_shared_l2_cache_hierarchy import (
    PrivateL1SharedL2CacheHierarchy,
)
from gem5.components.memory.single_channel import SingleChannelDDR3_1600
from gem5.components.processors.cpu_types import CPUTypes
from gem5.components.processors.simple_processor import SimpleProcessor
from gem5.isas import ISA
from gem5.resources.resource import DiskImageResource, KernelResource
from gem5.simulate.exit_event import ExitEvent
from gem5.simulate.simulator import Simulator

SYSTEM_KEYS = {
    "num_cores": int,
    "clock": str,
    "l1i_size": str,
    "l1i_assoc": int,
    "l1d_size": str,
    "l1d_assoc": int,
    "llc_size": str,
    "llc_assoc": int,
    "memory_size": str,
}
# What a checkpoint depends on (src/run/checkpoint.rs keys checkpoints by the same list):
# memory and CPUs are serialized state, and the guest calibrated its TSC against the clock at
# boot. Caches are not in a checkpoint (gem5 writes dirty lines back before saving one), so
# they, like the CPU model, may differ between setup and measure.
BOOT_SYSTEM_KEYS = ["num_cores", "memory_size", "clock"]
# The caches the setup phase always boots with, whatever the run's system says, so that the
# checkpoint is the same whichever cache design point made it (the methodology's default).
BOOT_CACHES = {
    "l1i_size": "16kB",
    "l1i_assoc": 8,
    "l1d_size": "16kB",
    "l1d_assoc": 8,
    "llc_size": "128kB",
    "llc_assoc": 8,
}
CPU_TYPES = {
    "atomic": CPUTypes.ATOMIC,
    "timing": CPUTypes.TIMING,
    "minor": CPUTypes.MINOR,
    "o3": CPUTypes.O3,
    "kvm": CPUTypes.KVM,
}


def say(message):
    print(f"SIMCTL-GEM5 {message}", flush=True)


def fail(message, code=1):
    say(f"error {message}")
    sys.exit(code)


def load_system(path, overrides):
    try:
        with open(path, "rb") as file:
            system = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as err:
        fail(f"cannot read system file {path}: {err}", 2)
    for setting in overrides:
        key, _, value = setting.partition("=")
        system[key] = value
    unknown = sorted(set(system) - set(SYSTEM_KEYS))
    missing = sorted(set(SYSTEM_KEYS) - set(system))
    if unknown or missing:
        fail(
            f"{path}: unknown keys {unknown}, missing keys {missing}; "
            f"valid keys: {', '.join(SYSTEM_KEYS)}",
            2,
        )
    try:
        return {key: SYSTEM_KEYS[key](value) for key, value in system.items()}
    except ValueError as err:
        fail(f"{path}: bad value: {err}", 2)


def make_board(system, processor):
    caches = PrivateL1SharedL2CacheHierarchy(
        l1d_size=system["l1d_size"],
        l1i_size=system["l1i_size"],
        l2_size=system["llc_size"],
        l1d_assoc=system["l1d_assoc"],
        l1i_assoc=system["l1i_assoc"],
        l2_assoc=system["llc_assoc"],
    )
    memory = SingleChannelDDR3_1600(size=system["memory_size"])
    return X86Board(
        clk_freq=system["clock"],
        processor=processor,
        memory=memory,
        cache_hierarchy=caches,
    )


def parse_args():
    parser = argparse.ArgumentParser(description="simctl gem5 FS config")
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--disk", required=True)
    parser.add_argument("--readfile", required=True)
    parser.add_argument("--system", required=True)
    parser.add_argument("--kernel-args", required=True)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument(
        "--phase", choices=["boot", "warmup", "measure", "full"], required=True
    )
    parser.add_argument("--fast-cpu", choices=["atomic", "kvm"], default="atomic")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--restore")
    parser.add_argument(
        "--cpu", choices=["atomic", "timing", "minor", "o3"], default="atomic"
    )
    parser.add_argument("--invocations", type=int, default=0)
    return parser.parse_args()


def write_json_atomic(path, data):
    temp = f"{path}.tmp"
    with open(temp, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(temp, path)


def check_restore(path, boot_system):
    """The checkpoint must come from the same memory, cores and clock (BOOT_SYSTEM_KEYS)."""
    shaped = Path(path) / "simctl-system.json"
    if shaped.is_file():
        with open(shaped) as file:
            saved = json.load(file)
        saved_boot = {key: saved.get(key) for key in BOOT_SYSTEM_KEYS}
        if saved_boot != boot_system:
            fail(
                f"checkpoint {path} was taken with {saved_boot}, not "
                f"{boot_system}; only the CPU model and the caches may differ",
                2,
            )


def main():
    started = time.monotonic()
    args = parse_args()
    system = load_system(args.system, args.set)
    num_cores = system["num_cores"]
    saves_checkpoint = args.phase in ("boot", "warmup")
    restores = args.phase in ("warmup", "measure")
    if saves_checkpoint and not args.checkpoint_dir:
        fail(f"--phase {args.phase} needs --checkpoint-dir", 2)
    if restores and not args.restore:
        fail(f"--phase {args.phase} needs --restore", 2)

    cpu_name = args.fast_cpu if saves_checkpoint else args.cpu
    processor = SimpleProcessor(
        cpu_type=CPU_TYPES[cpu_name], isa=ISA.X86, num_cores=num_cores
    )
    boot_system = {key: system[key] for key in BOOT_SYSTEM_KEYS}
    checkpoint = None
    if restores:
        check_restore(args.restore, boot_system)
        checkpoint = Path(args.restore)

    board_system = dict(system)
    if saves_checkpoint:
        board_system.update(BOOT_CACHES)
    board = make_board(board_system, processor)
    board.set_kernel_disk_workload(
        kernel=KernelResource(local_path=args.kernel),
        disk_image=DiskImageResource(local_path=args.disk, root_partition="1"),
        readfile=args.readfile,
        kernel_args=[args.kernel_args],
        checkpoint=checkpoint,
    )

    events = []
    outdir = Path(m5.options.outdir)

    def record(kind, work_id=None):
        # Host seconds since this script started: the phase timings in run.toml come from here.
        event = {
            "event": kind,
            "tick": m5.curTick(),
            "host_s": round(time.monotonic() - started, 3),
        }
        if work_id is not None:
            event["id"] = work_id
        events.append(event)
        write_json_atomic(outdir / "simctl-events.json", events)

    def on_checkpoint():
        if not saves_checkpoint:
            record("checkpoint-ignored")
            while True:
                yield False
        record("checkpoint")
        simulator.save_checkpoint(Path(args.checkpoint_dir))
        write_json_atomic(Path(args.checkpoint_dir) / "simctl-system.json", boot_system)
        record("checkpoint-saved")
        say(f"checkpoint saved {args.checkpoint_dir}")
        yield True

    measured = {"begun": 0, "ended": 0}

    def on_workbegin():
        while True:
            m5.stats.reset()
            measured["begun"] += 1
            # gem5 hands the guest's work id over as the exit code of the workbegin event.
            work_id = simulator.get_last_exit_event_code()
            record("workbegin", work_id)
            say(f"workbegin id={work_id} tick={m5.curTick()}")
            yield False

    def on_workend():
        while True:
            m5.stats.dump()
            measured["ended"] += 1
            work_id = simulator.get_last_exit_event_code()
            record("workend", work_id)
            say(f"workend id={work_id} tick={m5.curTick()} dumps={measured['ended']}")
            # Keep simulating: the guest still hands back its results (m5 writefile) and ends
            # with m5 exit, whose handler suppresses gem5's exit-time dump.
            yield False

    def on_exit():
        record("exit")
        # gem5 dumps stats once more at exit, cumulative since the last reset; marking this
        # tick as dumped suppresses that dump, so stats.txt has one dump per invocation.
        m5.stats.lastDump = m5.curTick()
        yield True

    def on_fail():
        record("fail")
        m5.stats.lastDump = m5.curTick()
        say("error the guest reported a failure (m5 fail)")
        yield True

    simulator = Simulator(
        board=board,
        on_exit_event={
            ExitEvent.CHECKPOINT: on_checkpoint(),
            ExitEvent.WORKBEGIN: on_workbegin(),
            ExitEvent.WORKEND: on_workend(),
            ExitEvent.EXIT: on_exit(),
            ExitEvent.FAIL: on_fail(),
        },
    )
    say(f"phase={args.phase} cpu={cpu_name}")
    # Instantiating first (run() would do it) separates the time the restore takes from the
    # simulation's; the method is idempotent and run() skips it afterwards.
    simulator._instantiate()
    record("simulate")
    simulator.run()
    cause = simulator.get_last_exit_event_cause()
    say(f"exit cause='{cause}' tick={m5.curTick()} dumps={measured['ended']}")
    kinds = [event["event"] for event in events]
    if "fail" in kinds:
        sys.exit(1)
    if saves_checkpoint and "checkpoint" not in kinds:
        fail(f"the simulation ended ({cause}) before the guest reached its checkpoint")
    if not saves_checkpoint and args.invocations and measured["ended"] != args.invocations:
        fail(f"{measured['ended']} measured invocations ended, expected {args.invocations}")
    if "exit" not in kinds and "checkpoint" not in kinds:
        fail(f"the simulation ended without m5 exit: {cause}")


main()
