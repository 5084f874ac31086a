//! The one wasmtime [`Engine`](wasmtime::Engine) every policy shares: its
//! configuration (pooling allocator, epoch interruption), the epoch ticker
//! thread, the linker that defines the sandbox, and compilation through the
//! on-disk cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::cache::{self, ComponentCache};
use crate::sandbox::{self, HostState};
use crate::{Error, Result};

/// Engine-wide settings. Per-policy limits are in
/// [`PolicyLimits`](crate::PolicyLimits).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Directory of the compilation cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Period of the epoch ticker in microseconds: the resolution of policy
    /// deadlines. A deadline of `d` is enforced between `d` and `d + tick`.
    pub epoch_tick_micros: u64,
    /// The largest memory cap any policy may be given, in bytes: the size of
    /// a linear-memory slot in the pooling allocator.
    pub max_memory_bytes: u64,
    /// Most policy instances alive at once (pooling allocator slots), over
    /// every policy, version and shadow candidate.
    pub max_instances: u32,
    /// Most bytes of native stack a policy may use; deeper recursion traps
    /// with a stack overflow.
    pub max_wasm_stack_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            epoch_tick_micros: 1_000,
            max_memory_bytes: 256 << 20,
            max_instances: 128,
            max_wasm_stack_bytes: 512 << 10,
        }
    }
}

impl EngineConfig {
    /// Checks the settings, listing every problem.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] naming every setting out of range.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if !(50..=100_000).contains(&self.epoch_tick_micros) {
            problems.push("epoch_tick_micros must be in [50, 100000]");
        }
        if self.max_memory_bytes < (1 << 20) || self.max_memory_bytes > (4 << 30) {
            problems.push("max_memory_bytes must be in [1 MiB, 4 GiB]");
        }
        if !(4..=10_000).contains(&self.max_instances) {
            problems.push("max_instances must be in [4, 10000]");
        }
        if !((64 << 10)..=(16 << 20)).contains(&self.max_wasm_stack_bytes) {
            problems.push("max_wasm_stack_bytes must be in [64 KiB, 16 MiB]");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Engine(format!(
                "invalid engine configuration: {}",
                problems.join("; ")
            )))
        }
    }
}

/// The shared engine. Cheap to clone; the epoch ticker stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    config: EngineConfig,
    ticker: Ticker,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Where a component came from, for [`PolicyEngine::compile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Loaded from the on-disk cache.
    Cache,
    /// Compiled with Cranelift now.
    Compiled,
}

impl PolicyEngine {
    /// Builds the engine: pooling allocator sized by `config`, epoch
    /// interruption with a ticker thread, and the sandbox's linker.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] if the configuration is invalid or wasmtime refuses
    /// it (e.g. the pooling allocator cannot reserve address space),
    /// [`Error::Io`] if the cache directory cannot be created.
    pub fn new(config: EngineConfig) -> Result<Self> {
        config.validate()?;
        let engine_err = |e: wasmtime::Error| Error::Engine(format!("{e:#}"));

        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances;
        // A Rust component is a handful of core instances (the program plus
        // wit-component's shim and fixup modules), one memory, a few tables.
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n)
            .total_tables(n * 4)
            .max_core_instances_per_component(16)
            .max_memories_per_component(1)
            .max_tables_per_component(8)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            // Reset a freed slot by rewriting the pages the policy dirtied
            // (found with Linux's PAGEMAP_SCAN, 6.7+) instead of unmapping
            // them: the next instance then takes no page faults. Measured on
            // the default correlation policy: 21 µs per fresh instance
            // with madvise, 8.4 µs with this; 15 µs where PAGEMAP_SCAN is
            // missing (plain memset of the first 2 MiB). Costs up to 2 MiB
            // of resident memory per slot that has been used.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack_bytes)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&wasm).map_err(engine_err)?;

        let mut linker = Linker::<HostState>::new(&engine);
        crate::bindings::drift::DriftPolicy::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        sandbox::wasi::add_to_linker(&mut linker).map_err(engine_err)?;

        let cache = match &config.cache_dir {
            Some(root) => Some(ComponentCache::open(root, &engine)?),
            None => None,
        };
        let ticker = Ticker::start(
            engine.clone(),
            Duration::from_micros(config.epoch_tick_micros),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                config,
                ticker,
            }),
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The directory this engine's compiled components are cached in.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.as_ref().map(ComponentCache::dir)
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Epoch ticks to allow for a deadline: rounded up, plus one because the
    /// next tick may come right after the deadline is set.
    pub(crate) fn deadline_ticks(&self, deadline: Duration) -> u64 {
        let tick = u128::from(self.inner.config.epoch_tick_micros);
        let ticks = deadline.as_micros().div_ceil(tick) + 1;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// Whether the ticker thread is running (it stops only when the engine
    /// is dropped).
    pub fn ticker_running(&self) -> bool {
        self.inner.ticker.is_running()
    }

    /// Compiles `bytes` into a component, going through the disk cache.
    /// Returns the component, its SHA-256 digest and where it came from.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] if the bytes are not a valid component.
    pub fn compile(&self, label: &str, bytes: &[u8]) -> Result<(Component, String, CompileSource)> {
        let digest = cache::digest(bytes);
        if let Some(cache) = &self.inner.cache
            && let Some(component) = cache.get(&self.inner.engine, &digest)
        {
            return Ok((component, digest, CompileSource::Cache));
        }
        let component = Component::new(&self.inner.engine, bytes).map_err(|e| Error::Compile {
            policy: label.to_owned(),
            message: format!("{e:#}"),
        })?;
        if let Some(cache) = &self.inner.cache
            && let Err(error) = cache.put(&digest, &component)
        {
            // The cache only saves time; a full disk must not stop a reload.
            tracing::warn!(%error, "could not cache the compiled policy");
        }
        Ok((component, digest, CompileSource::Compiled))
    }
}

/// The thread that advances the engine's epoch every tick, which is what
/// makes deadlines fire. A plain thread rather than a task: it must keep
/// ticking when the async runtime is busy, and it is owned (and joined) by
/// the engine.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine, tick: Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("umbra-policy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_are_all_reported() {
        let config = EngineConfig {
            epoch_tick_micros: 1,
            max_instances: 1,
            ..EngineConfig::default()
        };
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("epoch_tick_micros") && message.contains("max_instances"),
            "{message}"
        );
        assert!(EngineConfig::default().validate().is_ok());
    }

    #[test]
    fn deadlines_round_up_to_ticks_plus_one() {
        let engine = PolicyEngine::new(EngineConfig {
            max_instances: 4,
            ..EngineConfig::default()
        })
        .unwrap();
        assert_eq!(engine.deadline_ticks(Duration::from_millis(5)), 6);
        assert_eq!(engine.deadline_ticks(Duration::from_micros(5_001)), 7);
        assert_eq!(engine.deadline_ticks(Duration::from_micros(10)), 2);
        assert!(engine.ticker_running());
    }

    #[test]
    fn the_ticker_stops_when_dropped() {
        let engine = wasmtime::Engine::default();
        let ticker = Ticker::start(engine, Duration::from_millis(50)).unwrap();
        assert!(ticker.is_running());
        let started = std::time::Instant::now();
        // Joins the thread: returns only if it stopped, and without waiting
        // for the tick (it is unparked).
        drop(ticker);
        assert!(
            started.elapsed() < Duration::from_millis(40),
            "{:?}",
            started.elapsed()
        );
    }
}
