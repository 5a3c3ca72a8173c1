//! The stats.txt parser and `simctl stats`: every real fixture against values read by hand
//! (tests/fixtures/stats/MANIFEST.md), synthetic edge cases, and the CLI's errors.

use std::io::BufReader;

mod common;

use assert_cmd::Command;
use common::fixtures;
use predicates::prelude::*;
use simctl::stats::{Dump, DumpReader, read_dumps};

/// (file, dumps in the file)
const FILES: &[(&str, usize)] = &[
    ("old-se-x86-atomic-hello.txt", 1),
    ("old-se-x86-o3-hello.txt", 1),
    ("old-fs-x86-timing-boot.txt", 1),
    ("old-fs-alpha-atomic-2dumps.txt", 2),
    ("old-se-arm-minor.txt", 1),
    ("v21-se-x86-o3-classic.txt", 1),
    ("v22-se-arm-minor.txt", 1),
    ("v22-se-stdlib-atomic.txt", 1),
    ("v22-fs-arm-atomic-2dumps.txt", 2),
    ("v24-se-x86-atomic-nocache.txt", 1),
    ("v24-se-x86-o3-stdlib.txt", 1),
    ("v24-se-x86-o3-2dumps.txt", 2),
    ("v24-se-x86-o3-classic.txt", 1),
    ("v24-se-riscv-minor.txt", 1),
    ("v24-fs-x86-ruby-timing-4core.txt", 1),
];

/// (file, dump, stat, value) exactly as MANIFEST.md gives them.
const MANIFEST: &[(&str, usize, &str, f64)] = &[
    ("old-se-x86-atomic-hello.txt", 0, "sim_seconds", 0.000006),
    ("old-se-x86-atomic-hello.txt", 0, "sim_ticks", 5615000.0),
    ("old-se-x86-atomic-hello.txt", 0, "sim_insts", 5381.0),
    ("old-se-x86-atomic-hello.txt", 0, "sim_ops", 9748.0),
    (
        "old-se-x86-atomic-hello.txt",
        0,
        "system.cpu.numCycles",
        11231.0,
    ),
    (
        "old-se-x86-atomic-hello.txt",
        0,
        "system.cpu.committedInsts",
        5381.0,
    ),
    (
        "old-se-x86-atomic-hello.txt",
        0,
        "system.cpu.Branches",
        1208.0,
    ),
    ("old-fs-x86-timing-boot.txt", 0, "sim_seconds", 5.194946),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "sim_ticks",
        5194946000500.0,
    ),
    ("old-fs-x86-timing-boot.txt", 0, "sim_insts", 128436892.0),
    ("old-fs-x86-timing-boot.txt", 0, "sim_ops", 247560077.0),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.cpu.numCycles",
        10389892001.0,
    ),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.cpu.committedInsts",
        128436892.0,
    ),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.cpu.dcache.overall_miss_rate::total",
        0.075148,
    ),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.cpu.icache.overall_miss_rate::total",
        0.005439,
    ),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.cpu.l2cache.overall_miss_rate::total",
        0.063886,
    ),
    ("old-fs-x86-timing-boot.txt", 0, "host_seconds", 137.96),
    (
        "old-fs-x86-timing-boot.txt",
        0,
        "system.physmem.bytesPerActivate::gmean",
        189.066814,
    ),
    ("old-fs-alpha-atomic-2dumps.txt", 0, "sim_seconds", 0.200409),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "sim_ticks",
        200409271000.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "final_tick",
        4321213476000.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "sim_insts",
        523780905.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "testsys.cpu.numCycles",
        400825859.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "drivesys.cpu.numCycles",
        801651324.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "testsys.cpu.committedInsts",
        20257044.0,
    ),
    ("old-fs-alpha-atomic-2dumps.txt", 1, "sim_seconds", 0.000407),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        1,
        "sim_ticks",
        407341500.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        1,
        "final_tick",
        4321620817500.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        1,
        "sim_insts",
        523853183.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        1,
        "testsys.cpu.numCycles",
        821056.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        1,
        "drivesys.cpu.committedInsts",
        36152.0,
    ),
    (
        "old-fs-alpha-atomic-2dumps.txt",
        0,
        "drivesys.cpu.kern.mode_good::kernel",
        144.0,
    ),
    ("old-se-arm-minor.txt", 0, "sim_seconds", 0.000726),
    ("old-se-arm-minor.txt", 0, "sim_insts", 1185066.0),
    ("old-se-arm-minor.txt", 0, "sim_ops", 1356598.0),
    ("old-se-arm-minor.txt", 0, "system.cpu.numCycles", 1451628.0),
    (
        "old-se-arm-minor.txt",
        0,
        "system.cpu.committedInsts",
        1185066.0,
    ),
    ("old-se-arm-minor.txt", 0, "system.cpu.ipc", 0.816370),
    ("old-se-arm-minor.txt", 0, "system.cpu.cpi", 1.224934),
    (
        "old-se-arm-minor.txt",
        0,
        "system.cpu.dcache.overall_miss_rate::total",
        0.001753,
    ),
    (
        "old-se-arm-minor.txt",
        0,
        "system.cpu.branchPred.condIncorrect",
        830.0,
    ),
    (
        "old-se-arm-minor.txt",
        0,
        "system.cpu.fetch2.intInstructions",
        701187.0,
    ),
    ("v21-se-x86-o3-classic.txt", 0, "simSeconds", 0.000029),
    ("v21-se-x86-o3-classic.txt", 0, "simInsts", 5774.0),
    ("v21-se-x86-o3-classic.txt", 0, "simOps", 10430.0),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.numCycles",
        29119.0,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.committedInsts",
        5774.0,
    ),
    ("v21-se-x86-o3-classic.txt", 0, "system.cpu.ipc", 0.198290),
    ("v21-se-x86-o3-classic.txt", 0, "system.cpu.cpi", 5.043124),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.totalIpc",
        0.198290,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.dcache.overallMissRate::total",
        0.072531,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.l2cache.overallMissRate::total",
        0.969194,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.commit.branchMispredicts",
        361.0,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.numInsts",
        17107.0,
    ),
    (
        "v21-se-x86-o3-classic.txt",
        0,
        "system.cpu.numIssuedDist::samples",
        18220.0,
    ),
    ("v22-se-stdlib-atomic.txt", 0, "simSeconds", 0.000959),
    ("v22-se-stdlib-atomic.txt", 0, "simInsts", 1753694.0),
    ("v22-se-stdlib-atomic.txt", 0, "simOps", 2308608.0),
    (
        "v22-se-stdlib-atomic.txt",
        0,
        "board.processor.cores.core.numCycles",
        2879949.0,
    ),
    (
        "v22-se-stdlib-atomic.txt",
        0,
        "board.processor.cores.core.exec_context.thread_0.numInsts",
        1753694.0,
    ),
    (
        "v22-se-stdlib-atomic.txt",
        0,
        "board.processor.cores.core.exec_context.thread_0.numOps",
        2308608.0,
    ),
    (
        "v22-se-stdlib-atomic.txt",
        0,
        "board.cache_hierarchy.l1dcaches.overallMissRate::total",
        0.000480,
    ),
    (
        "v22-se-stdlib-atomic.txt",
        0,
        "board.cache_hierarchy.l1icaches.overallMissRate::total",
        0.000225,
    ),
    ("v22-fs-arm-atomic-2dumps.txt", 0, "simSeconds", 1.361751),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        0,
        "simTicks",
        1361751188000.0,
    ),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        0,
        "finalTick",
        1660341168500.0,
    ),
    ("v22-fs-arm-atomic-2dumps.txt", 0, "simInsts", 5890910183.0),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        0,
        "testsys.cpu_cluster.cpus0.numCycles",
        5446519113.0,
    ),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        0,
        "testsys.cpu_cluster.cpus0.exec_context.thread_0.numInsts",
        5435431773.0,
    ),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        0,
        "testsys.cpu_cluster.cpus1.exec_context.thread_0.numInsts",
        9945756.0,
    ),
    ("v22-fs-arm-atomic-2dumps.txt", 1, "simSeconds", 1.361971),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        1,
        "simTicks",
        1361970729750.0,
    ),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        1,
        "finalTick",
        1660560710250.0,
    ),
    ("v22-fs-arm-atomic-2dumps.txt", 1, "simInsts", 5891667246.0),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        1,
        "testsys.cpu_cluster.cpus0.numCycles",
        5447882923.0,
    ),
    (
        "v22-fs-arm-atomic-2dumps.txt",
        1,
        "testsys.cpu_cluster.cpus0.exec_context.thread_0.numInsts",
        5436010899.0,
    ),
    ("v24-se-x86-atomic-nocache.txt", 0, "simSeconds", 0.007415),
    ("v24-se-x86-atomic-nocache.txt", 0, "simTicks", 7415026218.0),
    ("v24-se-x86-atomic-nocache.txt", 0, "simInsts", 9115640.0),
    ("v24-se-x86-atomic-nocache.txt", 0, "simOps", 18229832.0),
    (
        "v24-se-x86-atomic-nocache.txt",
        0,
        "board.processor.cores.core.numCycles",
        22267371.0,
    ),
    (
        "v24-se-x86-atomic-nocache.txt",
        0,
        "board.processor.cores.core.commitStats0.numInsts",
        9115698.0,
    ),
    (
        "v24-se-x86-atomic-nocache.txt",
        0,
        "board.processor.cores.core.commitStats0.numOps",
        18229931.0,
    ),
    (
        "v24-se-x86-atomic-nocache.txt",
        0,
        "board.processor.cores.core.ipc",
        0.409375,
    ),
    (
        "v24-se-x86-atomic-nocache.txt",
        0,
        "board.processor.cores.core.thread_0.numInsts",
        0.0,
    ),
    ("v24-se-x86-o3-stdlib.txt", 0, "simSeconds", 0.002433),
    ("v24-se-x86-o3-stdlib.txt", 0, "simInsts", 9115640.0),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.numCycles",
        7305717.0,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.commitStats0.numInsts",
        9115640.0,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.ipc",
        1.247741,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.cpi",
        0.801449,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.cache_hierarchy.l1d-cache-0.overallMissRate::total",
        0.000674,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.cache_hierarchy.l1i-cache-0.overallMissRate::total",
        0.072800,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.cache_hierarchy.l2-cache-0.overallMissRate::total",
        0.834915,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.commit.branchMispredicts",
        3845.0,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.branchPred.condIncorrect",
        4223.0,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.branchPred.mispredicted_0::total",
        3621.0,
    ),
    (
        "v24-se-x86-o3-stdlib.txt",
        0,
        "board.processor.cores.core.branchPred.committed_0::total",
        1024191.0,
    ),
    ("v24-se-x86-o3-2dumps.txt", 0, "simSeconds", 0.0),
    ("v24-se-x86-o3-2dumps.txt", 0, "simTicks", 72927.0),
    ("v24-se-x86-o3-2dumps.txt", 0, "finalTick", 72927.0),
    ("v24-se-x86-o3-2dumps.txt", 0, "simInsts", 1.0),
    (
        "v24-se-x86-o3-2dumps.txt",
        0,
        "board.processor.cores.core.numCycles",
        219.0,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        0,
        "board.processor.cores.core.commitStats0.numInsts",
        1.0,
    ),
    ("v24-se-x86-o3-2dumps.txt", 1, "simSeconds", 0.000323),
    ("v24-se-x86-o3-2dumps.txt", 1, "simTicks", 323450559.0),
    ("v24-se-x86-o3-2dumps.txt", 1, "finalTick", 323523486.0),
    ("v24-se-x86-o3-2dumps.txt", 1, "simInsts", 1000001.0),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.processor.cores.core.numCycles",
        971323.0,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.processor.cores.core.commitStats0.numInsts",
        1000000.0,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.processor.cores.core.ipc",
        1.029524,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.cache_hierarchy.l1d-cache-0.overallMissRate::total",
        0.005976,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.cache_hierarchy.l2-cache-0.overallMissRate::total",
        0.836484,
    ),
    (
        "v24-se-x86-o3-2dumps.txt",
        1,
        "board.processor.cores.core.commit.branchMispredicts",
        2759.0,
    ),
    ("v24-se-x86-o3-2dumps.txt", 1, "hostSeconds", 5.05),
    (
        "v24-se-x86-o3-classic.txt",
        0,
        "system.cpu.numCycles",
        62207.0,
    ),
];

/// Stat values a file holds, counted independently of the parser: every line that is not
/// blank or a delimiter is one value, except oneline histograms (one value per `|` column).
fn expected_values(text: &str) -> Vec<usize> {
    let mut per_dump = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("---------- Begin") {
            per_dump.push(0);
        } else if !line.is_empty() && !line.starts_with("---------- End") {
            let last = per_dump.last_mut().expect("stat line before any Begin");
            *last += if line.contains(" | ") {
                line.split('#').next().unwrap().matches('|').count()
            } else {
                1
            };
        }
    }
    per_dump
}

#[test]
fn every_fixture_parses_strictly_with_every_value() {
    let dir = fixtures();
    for (file, dump_count) in FILES {
        let path = dir.join(file);
        let dumps = read_dumps(&path).unwrap_or_else(|err| panic!("{file}: {err:#}"));
        assert_eq!(dumps.len(), *dump_count, "{file}");
        assert!(dumps.iter().all(|d| d.complete), "{file}");
        let text = std::fs::read_to_string(&path).unwrap();
        let counts: Vec<usize> = dumps.iter().map(Dump::len).collect();
        assert_eq!(counts, expected_values(&text), "{file}: values per dump");
        for (index, dump) in dumps.iter().enumerate() {
            assert_eq!(dump.index, index);
        }
    }
}

#[test]
fn manifest_values_match() {
    let dir = fixtures();
    for (file, dump, stat, expected) in MANIFEST {
        let dumps = read_dumps(&dir.join(file)).unwrap();
        assert_eq!(
            dumps[*dump].get(stat),
            Some(*expected),
            "{file} d{dump} {stat}"
        );
    }
}

#[test]
fn fixture_edge_cases_nan_inf_units_and_suppressed_stats() {
    let dir = fixtures();
    let stdlib = &read_dumps(&dir.join("v24-se-x86-o3-stdlib.txt")).unwrap()[0];
    assert_eq!(stdlib.stat("simSeconds").unwrap().unit, Some("Second"));
    assert_eq!(
        stdlib.stat("board.processor.cores.core.ipc").unwrap().unit,
        Some("(Count/Cycle)")
    );
    assert!(
        stdlib.stats().any(|s| s.value == f64::INFINITY),
        "v24 stdlib has inf values"
    );
    assert!(
        stdlib.stats().any(|s| s.value.is_nan()),
        "v24 stdlib has nan values"
    );
    let two = read_dumps(&dir.join("v24-se-x86-o3-2dumps.txt")).unwrap();
    let rate = "board.cache_hierarchy.l1d-cache-0.overallMissRate::total";
    assert_eq!(two[0].get(rate), None, "suppressed in d0: absent, not 0");
    assert!(two[1].get(rate).is_some());
    let old = &read_dumps(&dir.join("old-se-x86-atomic-hello.txt")).unwrap()[0];
    assert!(
        old.stats().all(|s| s.unit.is_none()),
        "pre-v21 files have no units"
    );
    let v21 = &read_dumps(&dir.join("v21-se-x86-o3-classic.txt")).unwrap()[0];
    assert_eq!(
        v21.stat("system.cpu.numIssuedDist::samples").unwrap().unit,
        None,
        "v21 dists have no unit"
    );
    let ruby = &read_dumps(&dir.join("v24-fs-x86-ruby-timing-4core.txt")).unwrap()[0];
    let delay = "board.cache_hierarchy.ruby_system.delayHistogram";
    assert_eq!(
        ruby.get(&format!("{delay}::0-127")),
        Some(231477316.0),
        "oneline bucket 0"
    );
    assert_eq!(
        ruby.get(&format!("{delay}::128-255")),
        Some(526.0),
        "oneline bucket 1"
    );
    assert_eq!(
        ruby.stat(&format!("{delay}::0-127")).unwrap().unit,
        Some("Unspecified")
    );
}

const EVERY_KIND: &str = "
---------- Begin Simulation Statistics ----------
simSeconds                                   0.000455                       # Number of seconds simulated (Second)
finalTick                                 38061829252153                       # Number of ticks from beginning of simulation (restored from checkpoints and never reset) (Tick)
system.cpu.ipc                               nan                       # IPC: instructions per cycle ((Count/Cycle))
system.cpu.commitStats0.committedInstType::IntAlu         8275     80.22%     80.22% # Class of committed instruction. (Count)
system.cpu.commitStats0.committedInstType::total        10315                       # Class of committed instruction. (Count)
system.cpu.statIssuedInstType_0::IntAlu        19201     77.99%     79.07% # Number of instructions issued per FU type, per thread (Count)
system.cpu.numIssuedDist::samples            18220                       # Number of insts issued each cycle
system.cpu.numIssuedDist::mean               0.5                       # Number of insts issued each cycle
system.cpu.numIssuedDist::stdev              -nan                       # Number of insts issued each cycle
system.cpu.numIssuedDist::underflows             0      0.00%      0.00% # Number of insts issued each cycle
system.cpu.numIssuedDist::0-1                14000     76.84%     76.84% # Number of insts issued each cycle
system.cpu.numIssuedDist::overflows              0      0.00%    100.00% # Number of insts issued each cycle
system.cpu.numIssuedDist::min_value              0                       # Number of insts issued each cycle
system.cpu.numIssuedDist::max_value              8                       # Number of insts issued each cycle
system.mem.bytesPerActivate::gmean      189.066814                       # Bytes accessed per row activation (Byte)
system.sparse::samples                           3                       # sparse (Count)
system.sparse::42                                3                       # sparse (Count)
system.l2.overallMissRate::cpu.data            inf                       # miss rate (Ratio)
system.x.m_latencyHistSeqr::gmean     1.041212                       (Unspecified)
drivesys.cpu.kern.mode_good::kernel              144                                
system.h::bucket_size                            2                       # h (Unspecified)
system.h::max_bucket                             3                       # h (Unspecified)
system.h |           5     50.00%     50.00% |           5     50.00%    100.00% # h (Unspecified)
old.value                                   no_value                     # pre-2012 nan
system.neg                                   -inf
system.negative                              -12.5
---------- End Simulation Statistics   ----------
";

fn parse(text: &str) -> anyhow::Result<Vec<Dump>> {
    DumpReader::new(text.as_bytes(), "synthetic.txt").collect()
}

#[test]
fn every_line_kind() {
    let dumps = parse(EVERY_KIND).unwrap();
    let d = &dumps[0];
    assert_eq!(d.get("simSeconds"), Some(0.000455));
    assert_eq!(d.stat("finalTick").unwrap().unit, Some("Tick"));
    assert_eq!(d.get("finalTick"), Some(38061829252153.0));
    assert!(d.get("system.cpu.ipc").unwrap().is_nan());
    assert_eq!(
        d.get("system.cpu.commitStats0.committedInstType::IntAlu"),
        Some(8275.0),
        "pdf/cdf columns ignored"
    );
    assert_eq!(
        d.get("system.cpu.commitStats0.committedInstType::total"),
        Some(10315.0)
    );
    assert_eq!(
        d.get("system.cpu.statIssuedInstType_0::IntAlu"),
        Some(19201.0),
        "2-D vector"
    );
    assert_eq!(d.get("system.cpu.numIssuedDist::0-1"), Some(14000.0));
    assert_eq!(d.stat("system.cpu.numIssuedDist::0-1").unwrap().unit, None);
    assert!(
        d.get("system.cpu.numIssuedDist::stdev").unwrap().is_nan(),
        "-nan"
    );
    assert_eq!(d.get("system.cpu.numIssuedDist::max_value"), Some(8.0));
    assert_eq!(
        d.get("system.mem.bytesPerActivate::gmean"),
        Some(189.066814)
    );
    assert_eq!(d.get("system.sparse::42"), Some(3.0));
    assert_eq!(
        d.get("system.l2.overallMissRate::cpu.data"),
        Some(f64::INFINITY)
    );
    assert_eq!(
        d.stat("system.x.m_latencyHistSeqr::gmean").unwrap().unit,
        Some("Unspecified"),
        "unit without #"
    );
    assert_eq!(
        d.get("drivesys.cpu.kern.mode_good::kernel"),
        Some(144.0),
        "trailing blanks"
    );
    assert_eq!(d.get("system.h::0-1"), Some(5.0));
    assert_eq!(d.get("system.h::2-3"), Some(5.0));
    assert!(d.get("old.value").unwrap().is_nan());
    assert_eq!(d.get("system.neg"), Some(f64::NEG_INFINITY));
    assert_eq!(d.get("system.negative"), Some(-12.5));
    assert_eq!(d.get("system.cpu.numCycles"), None, "absent is None, not 0");
}

#[test]
fn tiny_read_buffer_gives_the_same_dumps() {
    let whole = parse(EVERY_KIND).unwrap();
    for capacity in [1, 2, 7, 64] {
        let reader = BufReader::with_capacity(capacity, EVERY_KIND.as_bytes());
        let dumps: Vec<Dump> = DumpReader::new(reader, "s")
            .collect::<anyhow::Result<_>>()
            .unwrap();
        let names = |d: &Dump| {
            d.stats()
                .map(|s| (s.name.to_string(), s.value.to_bits()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&dumps[0]), names(&whole[0]), "capacity {capacity}");
    }
}

#[test]
fn truncated_last_dump_is_kept_and_flagged() {
    let text = "\n---------- Begin Simulation Statistics ----------\nsimTicks 5\n\n---------- End Simulation Statistics   ----------\n\n---------- Begin Simulation Statistics ----------\nsimTicks 7\nsimInsts 3";
    let dumps = parse(text).unwrap();
    assert_eq!(dumps.len(), 2);
    assert!(dumps[0].complete);
    assert!(!dumps[1].complete);
    assert_eq!(
        dumps[1].get("simInsts"),
        Some(3.0),
        "last line without newline"
    );
}

#[test]
fn begin_without_end_starts_a_new_dump() {
    let text = "---------- Begin Simulation Statistics ----------\na 1\n---------- Begin Simulation Statistics ----------\na 2\n---------- End Simulation Statistics   ----------\n";
    let dumps = parse(text).unwrap();
    assert_eq!(
        (dumps.len(), dumps[0].complete, dumps[1].complete),
        (2, false, true)
    );
    assert_eq!(dumps[1].get("a"), Some(2.0));
}

#[test]
fn garbage_line_is_an_error_with_file_and_line_unless_lenient() {
    let text = "---------- Begin Simulation Statistics ----------\nsimTicks 5\nthis is garbage\nsimInsts 2\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(
        err.contains("synthetic.txt:3") && err.contains("malformed"),
        "{err}"
    );
    let mut reader = DumpReader::new(text.as_bytes(), "s").lenient(true);
    let dump = reader.next().unwrap().unwrap();
    assert_eq!(
        (dump.get("simTicks"), dump.get("simInsts"), dump.len()),
        (Some(5.0), Some(2.0), 2)
    );
    assert_eq!(reader.skipped(), 1);
    let missing_value = "---------- Begin Simulation Statistics ----------\nsimTicks\n";
    assert!(
        parse(missing_value)
            .unwrap_err()
            .to_string()
            .contains("synthetic.txt:2")
    );
}

#[test]
fn empty_and_binary_input() {
    assert!(parse("").unwrap().is_empty());
    assert!(parse("\n\n").unwrap().is_empty());
    let binary = [0u8, 159, 146, 150, 255, 10, 1, 2];
    let result: anyhow::Result<Vec<Dump>> = DumpReader::new(&binary[..], "bin").collect();
    assert!(result.unwrap_err().to_string().contains("bin:1"));
    let inside = b"---------- Begin Simulation Statistics ----------\nname\xff\xfe 12\n";
    let result: anyhow::Result<Vec<Dump>> = DumpReader::new(&inside[..], "bin").collect();
    assert!(result.unwrap_err().to_string().contains("bin:2"));
}

fn simctl() -> Command {
    Command::cargo_bin("simctl").unwrap()
}

#[test]
fn cli_csv_rows_with_match_and_dump_selection() {
    let dir = fixtures();
    let file = dir.join("v24-se-x86-o3-2dumps.txt");
    simctl()
        .args(["stats", "--format", "csv", "--match", r"cores\.core\.numCycles$", "--match", "^simTicks$"])
        .arg(&file)
        .assert()
        .success()
        .stdout("dump,stat,value,unit\n0,simTicks,72927,Tick\n0,board.processor.cores.core.numCycles,219,Cycle\n1,simTicks,323450559,Tick\n1,board.processor.cores.core.numCycles,971323,Cycle\n");
    simctl()
        .args([
            "stats",
            "--format",
            "csv",
            "--dump",
            "last",
            "--match",
            "^simTicks$",
        ])
        .arg(&file)
        .assert()
        .success()
        .stdout("dump,stat,value,unit\n1,simTicks,323450559,Tick\n");
    let json = simctl()
        .args([
            "stats",
            "--format",
            "json",
            "--dump",
            "0",
            "--match",
            "^simTicks$",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows[0]["value"], 72927.0);
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

#[test]
fn cli_flags_an_incomplete_dump_and_prints_a_table() {
    let temp = tempfile::tempdir().unwrap();
    let truncated = temp.path().join("stats.txt");
    std::fs::write(
        &truncated,
        "\n---------- Begin Simulation Statistics ----------\nsimTicks 5 # ticks (Tick)\n",
    )
    .unwrap();
    simctl()
        .args(["stats", "--format", "table"])
        .arg(&truncated)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^ +0  simTicks +5  Tick$").unwrap())
        .stderr(predicate::str::contains("dump 0 (line 2) is incomplete"));
}

#[test]
fn cli_default_is_csv_when_piped() {
    let dir = fixtures();
    simctl()
        .arg("stats")
        .arg(dir.join("old-se-x86-atomic-hello.txt"))
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "dump,stat,value,unit\n0,sim_seconds,0.000006,\n",
        ));
}

#[test]
fn cli_errors_are_clear_and_never_panics() {
    let temp = tempfile::tempdir().unwrap();
    let garbage = temp.path().join("garbage.txt");
    std::fs::write(
        &garbage,
        "---------- Begin Simulation Statistics ----------\nok 1\n%%% not a stat\n",
    )
    .unwrap();
    simctl()
        .arg("stats")
        .arg(&garbage)
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("garbage.txt:3")
                .and(predicate::str::contains("panicked").not()),
        );
    simctl()
        .args(["stats", "--lenient"])
        .arg(&garbage)
        .assert()
        .success()
        .stderr(predicate::str::contains("skipped 1"));
    simctl()
        .args(["stats", "/nonexistent/stats.txt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot open /nonexistent/stats.txt",
        ));
    let binary = temp.path().join("binary.bin");
    std::fs::write(&binary, [0u8, 1, 2, 255, 254, 10, 200]).unwrap();
    simctl()
        .arg("stats")
        .arg(&binary)
        .assert()
        .failure()
        .stderr(predicate::str::contains("binary.bin:1"));
    simctl()
        .args(["stats", "--match", "("])
        .arg(&garbage)
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a valid regex"));
    std::fs::write(
        &garbage,
        "---------- Begin Simulation Statistics ----------\nok 1\n",
    )
    .unwrap();
    simctl()
        .args(["stats", "--dump", "3"])
        .arg(&garbage)
        .assert()
        .failure()
        .stderr(predicate::str::contains("has 1 dump"));
}
