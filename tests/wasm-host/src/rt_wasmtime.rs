//! Wasmtime (Cranelift) behind [`Runtime`], with fuel metering.

use crate::abi::{call_import, HostState, HostTrap};
use crate::runtime::{CallError, Guest, Instance, Runtime, RuntimeKind, Val, FUEL_BUDGET};
use anyhow::{anyhow, Context as _};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};
use wasmtime::{
    Caller, Config, Engine, Extern, ExternType, Linker, Memory, Module, Store, Val as WVal, ValType,
};

pub struct WasmtimeRuntime {
    engine: Option<Engine>,
    error: Option<String>,
}

/// One engine per process, so compiled modules can be shared: compiling the largest module takes
/// Cranelift seconds, and tests instantiate the same few modules many times.
static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
/// Compiled modules by content hash (and length).
static MODULES: OnceLock<Mutex<HashMap<(u64, usize), Module>>> = OnceLock::new();

impl WasmtimeRuntime {
    pub fn new() -> Self {
        let engine = ENGINE.get_or_init(|| {
            let mut config = Config::new();
            config.consume_fuel(true);
            // Compile time over code quality: tests run each request once, and fuel counts Wasm
            // operators, whatever Cranelift does with them.
            config.cranelift_opt_level(wasmtime::OptLevel::None);
            Engine::new(&config).map_err(|e| e.to_string())
        });
        match engine {
            Ok(engine) => Self {
                engine: Some(engine.clone()),
                error: None,
            },
            Err(e) => Self {
                engine: None,
                error: Some(e.clone()),
            },
        }
    }
}

fn compiled(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Module> {
    let mut h = DefaultHasher::new();
    wasm.hash(&mut h);
    let key = (h.finish(), wasm.len());
    let cache = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(m) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let module = Module::new(engine, wasm).map_err(|e| anyhow!("wasmtime compile: {e}"))?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, module.clone());
    }
    Ok(module)
}

impl Default for WasmtimeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

crate::runtime::engine_glue!(WVal);

impl Runtime for WasmtimeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasmtime
    }

    fn instantiate(&self, wasm: &[u8], state: HostState) -> anyhow::Result<Box<dyn Instance>> {
        let engine = self.engine.as_ref().ok_or_else(|| {
            anyhow!(
                "wasmtime engine: {}",
                self.error.clone().unwrap_or_default()
            )
        })?;
        let module = compiled(engine, wasm)?;
        let mut linker: Linker<HostState> = Linker::new(engine);
        for import in module.imports() {
            let ExternType::Func(ty) = import.ty() else {
                anyhow::bail!(
                    "module imports `{}.{}`, which is not a function (this host provides only functions)",
                    import.module(),
                    import.name()
                );
            };
            let (m, n) = (import.module().to_string(), import.name().to_string());
            let results: Vec<ValType> = ty.results().collect();
            let (m2, n2) = (m.clone(), n.clone());
            linker
                .func_new(&m, &n, ty.clone(), move |mut caller, params, out| {
                    run_import(&mut caller, &m2, &n2, &results, params, out)
                        .map_err(wasmtime::Error::new)
                })
                .map_err(|e| anyhow!("link {m}.{n}: {e}"))?;
        }
        let mut store = Store::new(engine, state);
        store.set_fuel(FUEL_BUDGET).map_err(|e| anyhow!("{e}"))?;
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| anyhow!("wasmtime instantiate: {e}"))
            .context("instantiating the module")?;
        let exports = module.exports().map(|e| e.name().to_string()).collect();
        Ok(Box::new(WasmtimeInstance {
            store,
            instance,
            exports,
        }))
    }
}

struct WasmtimeInstance {
    store: Store<HostState>,
    instance: wasmtime::Instance,
    exports: std::collections::HashSet<String>,
}

impl Instance for WasmtimeInstance {
    fn call(&mut self, export: &str, args: &[Val]) -> Result<Option<Val>, CallError> {
        let func = self
            .instance
            .get_func(&mut self.store, export)
            .ok_or_else(|| CallError::Export {
                export: export.into(),
                message: "not exported".into(),
            })?;
        let ty = func.ty(&self.store);
        let mut out: Vec<WVal> = ty
            .results()
            .map(|t| {
                if matches!(t, ValType::I64) {
                    WVal::I64(0)
                } else {
                    WVal::I32(0)
                }
            })
            .collect();
        let params: Vec<WVal> = args.iter().copied().map(to_engine).collect();
        match func.call(&mut self.store, &params, &mut out) {
            Ok(()) => Ok(out.first().and_then(from_engine)),
            Err(e) => {
                if let Some(h) = e.downcast_ref::<HostTrap>() {
                    return Err(CallError::Host(h.clone()));
                }
                Err(CallError::Trap {
                    export: export.into(),
                    message: format!("{e:?}"),
                })
            }
        }
    }
    fn has_export(&self, name: &str) -> bool {
        self.exports.contains(name)
    }
    fn state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }
    fn state_ref(&self) -> &HostState {
        self.store.data()
    }
    fn fuel_consumed(&self) -> u64 {
        FUEL_BUDGET - self.store.get_fuel().unwrap_or(FUEL_BUDGET)
    }
}
