//! Metric definitions and the alias table that finds their source stats.
//!
//! gem5 renames stats across versions (v21 camelCase), CPU models (simple CPUs count in
//! `exec_context.thread_0`, O3 in `commit`) and configs (classic `system.cpu` vs stdlib
//! `board.processor.cores1.core`), so every input is a list of candidate names, first match wins.
//! `simInsts` is never used for a region: gem5 never resets it. Instructions come from the
//! per-core committed-instruction stats, which a stats reset clears.

use crate::stats::Dump;

/// Where a core's stats live, most recent naming first. `{n}` is the core number; a system with
/// one core drops the index (`board.processor.cores.core`), tried as `{n}` = "" for core 0.
const CORE_PREFIXES: &[&str] = &[
    "board.processor.cores{n}.core",
    "board.processor.switch{n}.core",
    "board.processor.start{n}.core",
    "system.switch_cpus{n}",
    "system.detailed_cpu{n}",
    "system.cpu{n}",
    "system.cpu_cluster.cpus{n}",
    "testsys.cpu_cluster.cpus{n}",
    "testsys.cpu{n}",
];

/// Committed instructions, newest spelling first (`numInsts` alone is *executed* in old O3).
const INSTRUCTIONS: &[&str] = &[
    "commitStats0.numInsts",
    "committedInsts",
    "commit.committedInsts",
    "exec_context.thread_0.numInsts",
    "thread_0.numInsts",
];
const CYCLES: &[&str] = &["numCycles"];
/// Committed mispredicted branches (the predictor's commit-time count) first, then older stats.
const BRANCH_MISPREDICTS: &[&str] = &[
    "branchPred.mispredicted_0::total",
    "commit.branchMispredicts",
    "branchPred.condIncorrect",
    "exec_context.thread_0.numBranchMispred",
];
/// Classic caches (new, old spelling), then Ruby cache memories (demand requests).
const MISSES: &[&str] = &[
    "overallMisses::total",
    "overall_misses::total",
    "m_demand_misses",
];
const ACCESSES: &[&str] = &[
    "overallAccesses::total",
    "overall_accesses::total",
    "m_demand_accesses",
];
/// Ruby (MESI_Two_Level) places its caches in controllers: stdlib `ruby_system.l1_controllers1`,
/// classic configs `ruby.l1_cntrl1`.
const RUBY: &str = "board.cache_hierarchy.ruby_system";
/// Per-requestor spellings of the classic cache counters (`overallMisses::<requestor>`): a cache
/// shared by several cores counts each core's misses under the core's own requestors.
const MISSES_BY_REQUESTOR: &[&str] = &["overallMisses::", "overall_misses::"];
const ACCESSES_BY_REQUESTOR: &[&str] = &["overallAccesses::", "overall_accesses::"];
/// Cache locations; `{core}` is the core prefix found above.
const L1I: &[&str] = &[
    "{core}.icache",
    "board.cache_hierarchy.l1icaches{n}",
    "board.cache_hierarchy.l1i-cache-{n}",
    "{ruby}.l1_controllers{n}.L1Icache",
    "system.ruby.l1_cntrl{n}.L1Icache",
];
const L1D: &[&str] = &[
    "{core}.dcache",
    "board.cache_hierarchy.l1dcaches{n}",
    "board.cache_hierarchy.l1d-cache-{n}",
    "{ruby}.l1_controllers{n}.L1Dcache",
    "system.ruby.l1_cntrl{n}.L1Dcache",
];
const LLC: &[&str] = &[
    "{core}.l2cache",
    "board.cache_hierarchy.l2caches{n}",
    "board.cache_hierarchy.l2-cache-{n}",
    "board.cache_hierarchy.l2cache",
    "system.l3",
    "system.l2cache",
    "system.l2",
    "{ruby}.l2_controllers.L2cache",
    "system.ruby.l2_cntrl0.L2cache",
];
const SIM_SECONDS: &[&str] = &["simSeconds", "sim_seconds"];
const HOST_SECONDS: &[&str] = &["hostSeconds", "host_seconds"];

/// The first-look metrics of one core in one dump. None = no source stat in this dump (or a
/// zero denominator), never a made-up 0.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoreMetrics {
    pub instructions: Option<f64>,
    pub cycles: Option<f64>,
    pub ipc: Option<f64>,
    pub cpi: Option<f64>,
    pub l1i_miss_rate: Option<f64>,
    pub l1i_mpki: Option<f64>,
    pub l1d_miss_rate: Option<f64>,
    pub l1d_mpki: Option<f64>,
    pub llc_miss_rate: Option<f64>,
    pub llc_mpki: Option<f64>,
    pub branch_mispredicts: Option<f64>,
    pub branch_mpki: Option<f64>,
    pub sim_seconds: Option<f64>,
    pub host_seconds: Option<f64>,
    /// (input, raw stat it came from) for every input that was found (`--explain`).
    pub sources: Vec<(&'static str, String)>,
}

/// Inputs that `--explain` lists, in order.
pub const INPUTS: &[&str] = &[
    "instructions",
    "cycles",
    "l1i_misses",
    "l1i_accesses",
    "l1d_misses",
    "l1d_accesses",
    "llc_misses",
    "llc_accesses",
    "branch_mispredicts",
    "sim_seconds",
    "host_seconds",
];

/// Expands `{n}` and `{core}`; core 0 also tries the index-less single-core spelling.
fn expand(pattern: &str, core: &str, cpu: usize) -> Vec<String> {
    let pattern = pattern.replace("{core}", core).replace("{ruby}", RUBY);
    let mut names = vec![pattern.replace("{n}", &cpu.to_string())];
    if cpu == 0 && pattern.contains("{n}") {
        names.push(pattern.replace("{n}", ""));
    }
    names
}

struct Finder<'a> {
    dump: &'a Dump,
    sources: Vec<(&'static str, String)>,
}

impl Finder<'_> {
    fn find(
        &mut self,
        input: &'static str,
        places: &[&str],
        stats: &[&str],
        core: &str,
        cpu: usize,
    ) -> Option<f64> {
        for place in places {
            for place in expand(place, core, cpu) {
                for stat in stats {
                    let name = if place.is_empty() {
                        (*stat).to_string()
                    } else {
                        format!("{place}.{stat}")
                    };
                    if let Some(value) = self.dump.get(&name) {
                        self.sources.push((input, name));
                        // An overflowed source leaves the metric empty, never another alias.
                        return value.as_f64();
                    }
                }
            }
        }
        None
    }
}

/// The core prefix for `cpu`: the first spelling with a cycle or instruction count; with
/// switchable CPUs the one that actually ran (non-zero cycles) wins.
fn core_prefix(dump: &Dump, cpu: usize) -> Option<String> {
    let candidates: Vec<String> = CORE_PREFIXES
        .iter()
        .flat_map(|p| expand(p, "", cpu))
        .collect();
    let cycles = |prefix: &str| {
        CYCLES
            .iter()
            .chain(INSTRUCTIONS)
            .find_map(|stat| dump.get(&format!("{prefix}.{stat}")))
            .map(|value| value.as_f64().unwrap_or(f64::NAN))
    };
    let present: Vec<(String, f64)> = candidates
        .into_iter()
        .filter_map(|p| cycles(&p).map(|c| (p, c)))
        .collect();
    present
        .iter()
        .find(|(_, c)| *c > 0.0)
        .or(present.first())
        .map(|(p, _)| p.clone())
}

/// The last-level cache's misses and accesses that belong to core `cpu`. A private LLC's totals
/// are the core's. A shared LLC's totals are every core's: the core's share is the sum of its
/// requestors (its instruction and data ports, its page-table walkers, its L1s' prefetchers);
/// without that breakdown (Ruby) a multi-core system gets no number rather than everyone's.
fn llc(finder: &mut Finder, core: &str, cpu: usize) -> (Option<f64>, Option<f64>) {
    for pattern in LLC {
        let private = pattern.contains("{n}") || pattern.contains("{core}");
        for place in expand(pattern, core, cpu) {
            if !MISSES
                .iter()
                .any(|stat| finder.dump.contains(&format!("{place}.{stat}")))
            {
                continue;
            }
            let single_core = !has_core(finder.dump, if cpu == 0 { 1 } else { 0 });
            if private || single_core {
                let misses = finder.find("llc_misses", &[&place], MISSES, "", cpu);
                let accesses = finder.find("llc_accesses", &[&place], ACCESSES, "", cpu);
                return (misses, accesses);
            }
            let owners = requestors_of(finder.dump, core, cpu);
            let mut share = |input: &'static str, prefixes: &[&str]| {
                let (sum, found) = requestor_sum(finder.dump, &place, prefixes, &owners);
                if found > 0 {
                    finder.sources.push((
                        input,
                        format!(
                            "{place}.{}<{}> ({found} stats)",
                            prefixes[0],
                            owners.join("|")
                        ),
                    ));
                }
                (found > 0).then_some(sum)
            };
            let misses = share("llc_misses", MISSES_BY_REQUESTOR);
            let accesses = share("llc_accesses", ACCESSES_BY_REQUESTOR);
            return (misses, accesses.filter(|_| misses.is_some()));
        }
    }
    (None, None)
}

/// How a shared cache names core `cpu`'s requestors: paths below the root object (`board.`,
/// `system.`) of the core and of its own L1 caches (whose prefetchers ask the LLC directly).
fn requestors_of(dump: &Dump, core: &str, cpu: usize) -> Vec<String> {
    let below_root = |path: &str| path.split_once('.').map(|(_, rest)| format!("{rest}."));
    let mut owners: Vec<String> = below_root(core).into_iter().collect();
    for places in [L1I, L1D] {
        let own = places
            .iter()
            .filter(|pattern| pattern.contains("{n}") || pattern.contains("{core}"))
            .flat_map(|pattern| expand(pattern, core, cpu))
            .find(|place| {
                MISSES
                    .iter()
                    .any(|stat| dump.contains(&format!("{place}.{stat}")))
            });
        owners.extend(own.as_deref().and_then(below_root));
    }
    owners
}

/// The sum of `place.<prefix><requestor>` over the requestors that start with one of `owners`,
/// and how many such stats there were. An overflowed count makes the sum unknown (NaN).
fn requestor_sum(dump: &Dump, place: &str, prefixes: &[&str], owners: &[String]) -> (f64, usize) {
    let mut sum = 0.0;
    let mut found = 0;
    for stat in dump.stats() {
        let Some(requestor) = prefixes.iter().find_map(|prefix| {
            stat.name
                .strip_prefix(place)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_prefix(prefix))
        }) else {
            continue;
        };
        if owners
            .iter()
            .any(|owner| requestor.starts_with(owner.as_str()))
        {
            sum += stat.value.as_f64().unwrap_or(f64::NAN);
            found += 1;
        }
    }
    (sum, found)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// Whether `dump` has stats for core `cpu`.
pub fn has_core(dump: &Dump, cpu: usize) -> bool {
    core_prefix(dump, cpu).is_some()
}

/// The metrics of core `cpu` in `dump`.
pub fn core_metrics(dump: &Dump, cpu: usize) -> CoreMetrics {
    let mut finder = Finder {
        dump,
        sources: Vec::new(),
    };
    let sim_seconds = finder.find("sim_seconds", &[""], SIM_SECONDS, "", cpu);
    let host_seconds = finder.find("host_seconds", &[""], HOST_SECONDS, "", cpu);
    let Some(core) = core_prefix(dump, cpu) else {
        return CoreMetrics {
            sim_seconds,
            host_seconds,
            sources: finder.sources,
            ..CoreMetrics::default()
        };
    };
    let instructions = finder.find("instructions", &[&core], INSTRUCTIONS, "", cpu);
    let cycles = finder.find("cycles", &[&core], CYCLES, "", cpu);
    let mut cache = |misses_input, accesses_input, places: &[&str]| {
        let misses = finder.find(misses_input, places, MISSES, &core, cpu);
        let accesses = finder.find(accesses_input, places, ACCESSES, &core, cpu);
        (misses, accesses)
    };
    let (l1i_misses, l1i_accesses) = cache("l1i_misses", "l1i_accesses", L1I);
    let (l1d_misses, l1d_accesses) = cache("l1d_misses", "l1d_accesses", L1D);
    let (llc_misses, llc_accesses) = llc(&mut finder, &core, cpu);
    let branch_mispredicts =
        finder.find("branch_mispredicts", &[&core], BRANCH_MISPREDICTS, "", cpu);
    let per_kilo = |events: Option<f64>| ratio(events, instructions).map(|r| r * 1000.0);
    CoreMetrics {
        instructions,
        cycles,
        ipc: ratio(instructions, cycles),
        cpi: ratio(cycles, instructions),
        l1i_miss_rate: ratio(l1i_misses, l1i_accesses),
        l1i_mpki: per_kilo(l1i_misses),
        l1d_miss_rate: ratio(l1d_misses, l1d_accesses),
        l1d_mpki: per_kilo(l1d_misses),
        llc_miss_rate: ratio(llc_misses, llc_accesses),
        llc_mpki: per_kilo(llc_misses),
        branch_mispredicts,
        branch_mpki: per_kilo(branch_mispredicts),
        sim_seconds,
        host_seconds,
        sources: finder.sources,
    }
}

impl CoreMetrics {
    /// (column, value) in report order.
    pub fn columns(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("instructions", self.instructions),
            ("cycles", self.cycles),
            ("ipc", self.ipc),
            ("cpi", self.cpi),
            ("l1i_miss_rate", self.l1i_miss_rate),
            ("l1i_mpki", self.l1i_mpki),
            ("l1d_miss_rate", self.l1d_miss_rate),
            ("l1d_mpki", self.l1d_mpki),
            ("llc_miss_rate", self.llc_miss_rate),
            ("llc_mpki", self.llc_mpki),
            ("branch_mispredicts", self.branch_mispredicts),
            ("branch_mpki", self.branch_mpki),
            ("sim_seconds", self.sim_seconds),
            ("host_seconds", self.host_seconds),
        ]
    }

    /// The value of a column by name.
    pub fn column(&self, name: &str) -> Option<f64> {
        self.columns()
            .into_iter()
            .find(|(column, _)| *column == name)
            .and_then(|(_, value)| value)
    }

    /// Which raw stat each input came from (`--explain`); None = no source, left empty.
    pub fn sources(&self) -> Vec<(&'static str, Option<&str>)> {
        INPUTS
            .iter()
            .map(|input| {
                (
                    *input,
                    self.sources
                        .iter()
                        .find(|(i, _)| i == input)
                        .map(|(_, s)| s.as_str()),
                )
            })
            .collect()
    }
}

/// Formats a metric for tables: empty when absent.
pub fn format_value(value: Option<f64>) -> String {
    match value {
        None => String::new(),
        Some(v) if v.is_nan() => "nan".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.6}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::DumpReader;

    fn dump(lines: &[(&str, u64)]) -> Dump {
        let mut text = String::from("\n---------- Begin Simulation Statistics ----------\n");
        for (name, value) in lines {
            text.push_str(&format!("{name} {value} # (Count)\n"));
        }
        text.push_str("\n---------- End Simulation Statistics   ----------\n");
        DumpReader::new(text.as_bytes(), "t")
            .next()
            .unwrap()
            .unwrap()
    }

    const L2: &str = "board.cache_hierarchy.l2cache";

    #[test]
    fn a_shared_llc_gives_each_core_only_its_own_requestors() {
        let stats = [
            ("board.processor.cores0.core.commitStats0.numInsts", 1000),
            ("board.processor.cores1.core.commitStats0.numInsts", 2000),
            ("board.processor.cores10.core.commitStats0.numInsts", 10),
            ("board.cache_hierarchy.l1dcaches1.overallMisses::total", 50),
            (
                &format!("{L2}.overallMisses::processor.cores0.core.inst"),
                300,
            ),
            (
                &format!("{L2}.overallMisses::processor.cores1.core.inst"),
                40,
            ),
            (
                &format!("{L2}.overallMisses::processor.cores1.core.data"),
                20,
            ),
            (
                &format!("{L2}.overallMisses::processor.cores1.core.mmu.dtb.walker"),
                6,
            ),
            (
                &format!("{L2}.overallMisses::cache_hierarchy.l1dcaches1.prefetcher"),
                4,
            ),
            (
                &format!("{L2}.overallMisses::processor.cores10.core.inst"),
                1000,
            ),
            (&format!("{L2}.overallMisses::total"), 1370),
            (
                &format!("{L2}.overallAccesses::processor.cores1.core.inst"),
                100,
            ),
            (
                &format!("{L2}.overallAccesses::processor.cores1.core.data"),
                40,
            ),
            (&format!("{L2}.overallAccesses::total"), 5000),
        ];
        let core1 = core_metrics(&dump(&stats), 1);
        // 40 + 20 + 6 + 4 misses of 2000 instructions; not cores0's, not cores10's.
        assert_eq!(core1.llc_mpki, Some(35.0));
        assert_eq!(core1.llc_miss_rate, Some(70.0 / 140.0));
    }

    #[test]
    fn a_shared_llc_without_a_breakdown_gives_no_per_core_number_on_several_cores() {
        let shared = [
            ("board.processor.cores0.core.commitStats0.numInsts", 1000),
            ("board.processor.cores1.core.commitStats0.numInsts", 2000),
            ("board.cache_hierarchy.l2cache.overallMisses::total", 500),
            ("board.cache_hierarchy.l2cache.overallAccesses::total", 900),
        ];
        assert_eq!(core_metrics(&dump(&shared), 1).llc_mpki, None);
        // One core: the whole cache is its own.
        let alone = [
            ("board.processor.cores.core.commitStats0.numInsts", 1000),
            ("board.cache_hierarchy.l2cache.overallMisses::total", 500),
        ];
        assert_eq!(core_metrics(&dump(&alone), 0).llc_mpki, Some(500.0));
    }
}
