//! `wasmi` (an interpreter) behind [`Runtime`], with fuel metering.

use crate::abi::{call_import, HostState, HostTrap};
use crate::runtime::{CallError, Guest, Instance, Runtime, RuntimeKind, Val, FUEL_BUDGET};
use anyhow::anyhow;
use wasmi::{
    Caller, Config, Engine, Extern, ExternType, Linker, Memory, Module, Store, Val as IVal, ValType,
};

pub struct WasmiRuntime {
    engine: Engine,
}

impl WasmiRuntime {
    pub fn new() -> Self {
        let mut config = Config::default();
        config.consume_fuel(true);
        Self {
            engine: Engine::new(&config),
        }
    }
}

impl Default for WasmiRuntime {
    fn default() -> Self {
        Self::new()
    }
}

crate::runtime::engine_glue!(IVal);

impl wasmi::errors::HostError for HostTrap {}

impl Runtime for WasmiRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Interpreter
    }

    fn instantiate(&self, wasm: &[u8], state: HostState) -> anyhow::Result<Box<dyn Instance>> {
        let module = Module::new(&self.engine, wasm).map_err(|e| anyhow!("wasmi compile: {e}"))?;
        let mut linker: Linker<HostState> = Linker::new(&self.engine);
        for import in module.imports() {
            let ExternType::Func(ty) = import.ty() else {
                anyhow::bail!(
                    "module imports `{}.{}`, which is not a function (this host provides only functions)",
                    import.module(),
                    import.name()
                );
            };
            let (m, n) = (import.module().to_string(), import.name().to_string());
            let results: Vec<ValType> = ty.results().to_vec();
            let (m2, n2) = (m.clone(), n.clone());
            linker
                .func_new(&m, &n, ty.clone(), move |mut caller, params, out| {
                    run_import(&mut caller, &m2, &n2, &results, params, out)
                        .map_err(wasmi::Error::host)
                })
                .map_err(|e| anyhow!("link {m}.{n}: {e}"))?;
        }
        let mut store = Store::new(&self.engine, state);
        store.set_fuel(FUEL_BUDGET).map_err(|e| anyhow!("{e}"))?;
        let instance = linker
            .instantiate_and_start(&mut store, &module)
            .map_err(|e| anyhow!("wasmi instantiate: {e}"))?;
        let exports = module.exports().map(|e| e.name().to_string()).collect();
        Ok(Box::new(WasmiInstance {
            store,
            instance,
            exports,
        }))
    }
}

struct WasmiInstance {
    store: Store<HostState>,
    instance: wasmi::Instance,
    exports: std::collections::HashSet<String>,
}

impl Instance for WasmiInstance {
    fn call(&mut self, export: &str, args: &[Val]) -> Result<Option<Val>, CallError> {
        let func =
            self.instance
                .get_func(&self.store, export)
                .ok_or_else(|| CallError::Export {
                    export: export.into(),
                    message: "not exported".into(),
                })?;
        let ty = func.ty(&self.store);
        let mut out: Vec<IVal> = ty
            .results()
            .iter()
            .map(|t| {
                if matches!(t, ValType::I64) {
                    IVal::I64(0)
                } else {
                    IVal::I32(0)
                }
            })
            .collect();
        let params: Vec<IVal> = args.iter().copied().map(to_engine).collect();
        match func.call(&mut self.store, &params, &mut out) {
            Ok(()) => Ok(out.first().and_then(from_engine)),
            Err(e) => {
                if let Some(h) = e.downcast_ref::<HostTrap>() {
                    return Err(CallError::Host(h.clone()));
                }
                Err(CallError::Trap {
                    export: export.into(),
                    message: e.to_string(),
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
