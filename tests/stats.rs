//! The stats.txt parser and `simctl stats`: every real fixture against values read by hand
//! (tests/fixtures/stats/MANIFEST.md), synthetic edge cases, and the CLI's errors.

use std::io::BufReader;

mod common;

use assert_cmd::Command;
use common::fixtures;
use predicates::prelude::*;
use simctl::stats::{Dump, DumpReader, NameFilter, Value, read_dumps};

/// A stat's value as a float, for comparing with values read by hand.
trait NumberOf {
    fn number(&self, name: &str) -> Option<f64>;
}

impl NumberOf for Dump {
    fn number(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }
}

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
            dumps[*dump].number(stat),
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
        stdlib
            .stats()
            .any(|s| s.value == Value::Float(f64::INFINITY)),
        "v24 stdlib has inf values"
    );
    assert!(
        stdlib
            .stats()
            .any(|s| s.value.as_f64().is_some_and(f64::is_nan)),
        "v24 stdlib has nan values"
    );
    let two = read_dumps(&dir.join("v24-se-x86-o3-2dumps.txt")).unwrap();
    let rate = "board.cache_hierarchy.l1d-cache-0.overallMissRate::total";
    assert_eq!(two[0].number(rate), None, "suppressed in d0: absent, not 0");
    assert!(two[1].number(rate).is_some());
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
        ruby.number(&format!("{delay}::0-127")),
        Some(231477316.0),
        "oneline bucket 0"
    );
    assert_eq!(
        ruby.number(&format!("{delay}::128-255")),
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
    assert_eq!(d.number("simSeconds"), Some(0.000455));
    assert_eq!(d.stat("finalTick").unwrap().unit, Some("Tick"));
    assert_eq!(d.number("finalTick"), Some(38061829252153.0));
    assert!(d.number("system.cpu.ipc").unwrap().is_nan());
    assert_eq!(
        d.number("system.cpu.commitStats0.committedInstType::IntAlu"),
        Some(8275.0),
        "pdf/cdf columns ignored"
    );
    assert_eq!(
        d.number("system.cpu.commitStats0.committedInstType::total"),
        Some(10315.0)
    );
    assert_eq!(
        d.number("system.cpu.statIssuedInstType_0::IntAlu"),
        Some(19201.0),
        "2-D vector"
    );
    assert_eq!(d.number("system.cpu.numIssuedDist::0-1"), Some(14000.0));
    assert_eq!(d.stat("system.cpu.numIssuedDist::0-1").unwrap().unit, None);
    assert!(
        d.number("system.cpu.numIssuedDist::stdev")
            .unwrap()
            .is_nan(),
        "-nan"
    );
    assert_eq!(d.number("system.cpu.numIssuedDist::max_value"), Some(8.0));
    assert_eq!(
        d.number("system.mem.bytesPerActivate::gmean"),
        Some(189.066814)
    );
    assert_eq!(d.number("system.sparse::42"), Some(3.0));
    assert_eq!(
        d.number("system.l2.overallMissRate::cpu.data"),
        Some(f64::INFINITY)
    );
    assert_eq!(
        d.stat("system.x.m_latencyHistSeqr::gmean").unwrap().unit,
        Some("Unspecified"),
        "unit without #"
    );
    assert_eq!(
        d.number("drivesys.cpu.kern.mode_good::kernel"),
        Some(144.0),
        "trailing blanks"
    );
    assert_eq!(d.number("system.h::0-1"), Some(5.0));
    assert_eq!(d.number("system.h::2-3"), Some(5.0));
    assert!(d.number("old.value").unwrap().is_nan());
    assert_eq!(d.number("system.neg"), Some(f64::NEG_INFINITY));
    assert_eq!(d.number("system.negative"), Some(-12.5));
    assert_eq!(
        d.number("system.cpu.numCycles"),
        None,
        "absent is None, not 0"
    );
}

#[test]
fn tiny_read_buffer_gives_the_same_dumps() {
    let whole = parse(EVERY_KIND).unwrap();
    for capacity in [1, 2, 7, 64] {
        let reader = BufReader::with_capacity(capacity, EVERY_KIND.as_bytes());
        let dumps: Vec<Dump> = DumpReader::new(reader, "s")
            .collect::<anyhow::Result<_>>()
            .unwrap();
        let names = |d: &Dump| d.stats().map(|s| format!("{s:?}")).collect::<Vec<_>>();
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
    assert!(dumps[1].contains("simTicks"));
    assert!(
        !dumps[1].contains("simInsts"),
        "an unterminated last line may be cut: left out"
    );
}

#[test]
fn a_value_line_cut_mid_number_is_left_out() {
    let text = common::cut_mid_number();
    let dumps = parse(&text).unwrap();
    assert_eq!(dumps.len(), 2);
    assert!(dumps[0].complete && !dumps[1].complete);
    let name = "board.processor.cores.core.commitStats0.numInsts";
    assert!(dumps[0].contains(name));
    assert!(
        !dumps[1].contains(name),
        "1000 of 1000000 must not be reported"
    );
    assert!(dumps[1].contains("board.processor.cores.core.numCycles"));
    let ended = format!("{text}\n");
    assert!(
        parse(&ended).unwrap()[1].contains(name),
        "a line with its newline is whole"
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
    assert_eq!(dumps[1].number("a"), Some(2.0));
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
        (dump.number("simTicks"), dump.number("simInsts"), dump.len()),
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
        .stdout("dump,stat,value,unit,complete,overflow\n0,simTicks,72927,Tick,true,\n0,board.processor.cores.core.numCycles,219,Cycle,true,\n1,simTicks,323450559,Tick,true,\n1,board.processor.cores.core.numCycles,971323,Cycle,true,\n");
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
        .stdout("dump,stat,value,unit,complete,overflow\n1,simTicks,323450559,Tick,true,\n");
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
        .args(["stats", "--format", "table", "--allow-incomplete"])
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
            "dump,stat,value,unit,complete,overflow\n0,sim_seconds,0.000006,,true,\n",
        ));
}

#[test]
fn cli_errors_are_clear_and_never_panics() {
    let temp = tempfile::tempdir().unwrap();
    let garbage = temp.path().join("garbage.txt");
    std::fs::write(
        &garbage,
        "---------- Begin Simulation Statistics ----------\nok 1\n%%% not a stat\n---------- End Simulation Statistics   ----------\n",
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

#[test]
fn cli_marks_incomplete_dumps_and_fails_unless_allowed() {
    let temp = tempfile::tempdir().unwrap();
    let cut = temp.path().join("stats.txt");
    std::fs::write(&cut, common::cut_mid_number()).unwrap();
    let expected = "dump,stat,value,unit,complete,overflow\n0,simTicks,72927,Tick,true,\n1,simTicks,323450559,Tick,false,\n";
    simctl()
        .args(["stats", "--format", "csv", "--match", "^simTicks$"])
        .arg(&cut)
        .assert()
        .code(2)
        .stdout(expected)
        .stderr(
            predicate::str::contains("stats.txt: dump 1 (line 1697) is incomplete")
                .and(predicate::str::contains("line 3611"))
                .and(predicate::str::contains("hint: --allow-incomplete")),
        );
    simctl()
        .args(["stats", "--format", "csv", "--allow-incomplete"])
        .args(["--match", "^simTicks$"])
        .arg(&cut)
        .assert()
        .success()
        .stdout(expected)
        .stderr(predicate::str::contains("warning: ").and(predicate::str::contains("dump 1")));
    let json = simctl()
        .args(["stats", "--format", "json", "--allow-incomplete"])
        .args(["--match", "numInsts$"])
        .arg(&cut)
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(rows.iter().all(|row| row["complete"] == (row["dump"] == 0)));
    assert!(
        rows.iter().all(|row| row["value"] != 1000),
        "the cut value is left out: {rows:?}"
    );
}

#[test]
fn cli_empty_file_is_an_error_naming_it() {
    let temp = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.txt", ""), ("blank.txt", "\n\n  \n")] {
        let file = temp.path().join(name);
        std::fs::write(&file, text).unwrap();
        simctl()
            .args(["stats", "--format", "csv"])
            .arg(&file)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "{name}: no statistics dump"
            )));
    }
}

const EXTREME_VALUES: &str = "---------- Begin Simulation Statistics ----------
u64max                18446744073709551615   # u64 counter at its maximum (Count)
two70                 1180591620717411303424
two53plus1            9007199254740993
negative              -9223372036854775808
huge                  1e400
negativehuge          -1e400
beyond                123456789012345678901234567890123456789012345
half                  0.5
five                  5.000000
---------- End Simulation Statistics   ----------
";

#[test]
fn cli_prints_integers_exactly_and_marks_overflow() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("stats.txt");
    std::fs::write(&file, EXTREME_VALUES).unwrap();
    simctl()
        .args(["stats", "--format", "csv"])
        .arg(&file)
        .assert()
        .success()
        .stdout(
            "dump,stat,value,unit,complete,overflow
0,u64max,18446744073709551615,Count,true,
0,two70,1180591620717411303424,,true,
0,two53plus1,9007199254740993,,true,
0,negative,-9223372036854775808,,true,
0,huge,,,true,1e400
0,negativehuge,,,true,-1e400
0,beyond,,,true,123456789012345678901234567890123456789012345
0,half,0.5,,true,
0,five,5.0,,true,
",
        );
    let json = simctl()
        .args(["stats", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(json.stdout).unwrap();
    for exact in [
        r#""value":18446744073709551615"#,
        r#""value":1180591620717411303424"#,
        r#""value":9007199254740993"#,
        r#""value":null,"overflow":"1e400""#,
        r#""value":5.0"#,
    ] {
        assert!(text.contains(exact), "{exact} in {text}");
    }
    let rows: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 9);
    simctl()
        .args(["stats", "--format", "table", "--match", "huge"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("overflow: 1e400"));
}

/// Runs simctl under an address-space limit: an allocation past it aborts the process.
fn simctl_within(limit_bytes: u64, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("prlimit")
        .arg(format!("--as={limit_bytes}"))
        .arg(env!("CARGO_BIN_EXE_simctl"))
        .args(args)
        .output()
        .unwrap()
}

const GIB: u64 = 1 << 30;

#[test]
fn cli_endless_and_giant_lines_fail_clearly_within_bounded_memory() {
    let output = simctl_within(GIB, &["stats".as_ref(), "/dev/zero".as_ref()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/dev/zero:1: line longer than 64 MiB"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // A 200 MB oneline histogram line: 100 million buckets.
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("stats.txt");
    let mut text = b"---------- Begin Simulation Statistics ----------\nsimTicks 5\nh |".to_vec();
    text.extend(b"0|".repeat(100_000_000));
    text.extend(b"\n---------- End Simulation Statistics   ----------\n");
    std::fs::write(&file, text).unwrap();
    let output = simctl_within(GIB, &["stats".as_ref(), file.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("stats.txt:3: line longer than 64 MiB"),
        "{stderr}"
    );
}

#[test]
fn cli_directory_is_refused_before_any_output() {
    let temp = tempfile::tempdir().unwrap();
    simctl()
        .args(["stats", "--format", "csv"])
        .arg(temp.path())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("is a directory"));
}

#[test]
fn library_values_are_exact_and_overflow_is_marked() {
    let dump = &parse(EXTREME_VALUES).unwrap()[0];
    let expected = [
        ("u64max", Value::Int(u64::MAX.into())),
        ("two70", Value::Int(1 << 70)),
        ("two53plus1", Value::Int((1 << 53) + 1)),
        ("negative", Value::Int(i64::MIN.into())),
        ("huge", Value::Overflow("1e400")),
        ("negativehuge", Value::Overflow("-1e400")),
        (
            "beyond",
            Value::Overflow("123456789012345678901234567890123456789012345"),
        ),
        ("half", Value::Float(0.5)),
        ("five", Value::Float(5.0)),
    ];
    for (name, value) in expected {
        assert_eq!(dump.get(name), Some(value), "{name}");
    }
    assert_eq!(dump.get("huge").unwrap().as_f64(), None, "never inf");
}

#[test]
fn a_name_filter_keeps_exactly_the_stats_it_accepts() {
    let text = format!("{EVERY_KIND}{EVERY_KIND}");
    let all = parse(&text).unwrap();
    let keep = |name: &str| name.contains("numIssuedDist") || name.starts_with("system.h::");
    let kept: Vec<Dump> = DumpReader::new(text.as_bytes(), "s")
        .filter(NameFilter::new(keep))
        .collect::<anyhow::Result<_>>()
        .unwrap();
    assert_eq!(kept.len(), 2);
    for (all, kept) in all.iter().zip(&kept) {
        let expected: Vec<String> = all
            .stats()
            .filter(|s| keep(s.name))
            .map(|s| format!("{s:?}"))
            .collect();
        let got: Vec<String> = kept.stats().map(|s| format!("{s:?}")).collect();
        assert_eq!(got, expected);
        assert!(got.iter().any(|s| s.contains("system.h::2-3")), "{got:?}");
    }
}

/// Every result of a reader, the lines skipped after each, as comparable text.
fn outcome(mut reader: DumpReader<impl std::io::BufRead>) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(result) = reader.next() {
        seen.push(match result {
            Ok(dump) => format!(
                "{} line {} {} {:?} {:?} skipped {}",
                dump.index,
                dump.line,
                dump.complete,
                dump.cut_line,
                dump.stats().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
                reader.skipped()
            ),
            Err(err) => format!("{err:#}"),
        });
    }
    seen
}

#[test]
fn a_large_file_is_parsed_on_threads_with_the_sequential_result() {
    // `open` parses a file of 8 MiB or more on threads, in units of 1 MiB (~4 dumps here).
    let fixture = std::fs::read(fixtures().join("v24-se-x86-o3-2dumps.txt")).unwrap();
    let mut text = fixture.repeat(40);
    let bad_line_at = fixture.len() * 35 + fixture.len() / 3;
    let bad_line_at = bad_line_at
        + text[bad_line_at..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap()
        + 1;
    text.splice(
        bad_line_at..bad_line_at,
        b"not a stat line\n".iter().copied(),
    );
    let line = text[..bad_line_at].iter().filter(|&&b| b == b'\n').count() + 1;
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("stats.txt");
    std::fs::write(&path, &text).unwrap();
    let sequential = || {
        let file = std::fs::File::open(&path).unwrap();
        DumpReader::new(std::io::BufReader::new(file), &path)
    };
    let open = || simctl::stats::parse::open(&path).unwrap();

    let strict = outcome(open());
    assert_eq!(strict.len(), 71, "70 dumps, then the error");
    let error = strict.last().unwrap();
    assert!(
        error.contains(&format!(
            "stats.txt:{line}: malformed stat line 'not a stat line'"
        )),
        "{error}"
    );
    assert_eq!(strict, outcome(sequential()));
    let lenient = outcome(open().lenient(true));
    assert_eq!(lenient.len(), 80);
    assert!(lenient.last().unwrap().ends_with("skipped 1"));
    assert_eq!(lenient, outcome(sequential().lenient(true)));
    let ipc = |name: &str| name.ends_with(".ipc");
    assert_eq!(
        outcome(open().lenient(true).filter(NameFilter::new(ipc))),
        outcome(sequential().lenient(true).filter(NameFilter::new(ipc)))
    );
}
