//! `wasmi` (an interpreter) behind [`Runtime`], with fuel metering.

use crate::abi::{call_import, HostState, HostTrap};
use crate::runtime::{CallError, Guest, Instance, Runtime, RuntimeKind, Val, FUEL_BUDGET};
use anyhow::anyhow;
use wasmi::{
    Caller, Config, Engine, Extern, ExternType, Linker, Module, Store, Val as IVal, ValType,
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

fn to_i(v: Val) -> IVal {
    match v {
        Val::I32(x) => IVal::I32(x),
        Val::I64(x) => IVal::I64(x),
    }
}

fn from_i(v: &IVal) -> Option<Val> {
    match v {
        IVal::I32(x) => Some(Val::I32(*x)),
        IVal::I64(x) => Some(Val::I64(*x)),
        _ => None,
    }
}

impl wasmi::errors::HostError for HostTrap {}

struct IGuest<'a, 'b> {
    caller: &'a mut Caller<'b, HostState>,
}

impl Guest for IGuest<'_, '_> {
    fn state(&mut self) -> &mut HostState {
        self.caller.data_mut()
    }
    fn read(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, HostTrap> {
        let mem = self
            .caller
            .get_export("memory")
            .and_then(Extern::into_memory)
            .ok_or(HostTrap::NoMemory)?;
        let data = mem.data(&*self.caller);
        let (start, end) = (ptr as usize, ptr as usize + len as usize);
        data.get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(HostTrap::OutOfBounds { ptr, len })
    }
    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), HostTrap> {
        let mem = self
            .caller
            .get_export("memory")
            .and_then(Extern::into_memory)
            .ok_or(HostTrap::NoMemory)?;
        let data = mem.data_mut(&mut *self.caller);
        let len = bytes.len() as u32;
        let (start, end) = (ptr as usize, ptr as usize + bytes.len());
        data.get_mut(start..end)
            .ok_or(HostTrap::OutOfBounds { ptr, len })?
            .copy_from_slice(bytes);
        Ok(())
    }
    fn alloc(&mut self, size: u32) -> Result<u32, HostTrap> {
        let func = ["malloc", "proxy_on_memory_allocate"]
            .iter()
            .find_map(|n| self.caller.get_export(n).and_then(Extern::into_func))
            .ok_or(HostTrap::NoAllocator)?;
        let mut out = [IVal::I32(0)];
        func.call(&mut *self.caller, &[IVal::I32(size as i32)], &mut out)
            .map_err(|e| HostTrap::AllocatorFailed(e.to_string()))?;
        match out[0] {
            IVal::I32(0) => Err(HostTrap::AllocatorFailed(format!(
                "returned null for {size} bytes"
            ))),
            IVal::I32(p) => Ok(p as u32),
            _ => Err(HostTrap::AllocatorFailed("returned a non-i32".into())),
        }
    }
}

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
                    let args: Vec<Val> = params.iter().filter_map(from_i).collect();
                    let mut guest = IGuest {
                        caller: &mut caller,
                    };
                    let ret =
                        call_import(&mut guest, &m2, &n2, &args).map_err(wasmi::Error::host)?;
                    if let (Some(slot), Some(v)) = (out.first_mut(), ret) {
                        *slot = match results.first() {
                            Some(ValType::I64) => IVal::I64(v),
                            _ => IVal::I32(v as i32),
                        };
                    }
                    Ok(())
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
        let params: Vec<IVal> = args.iter().copied().map(to_i).collect();
        match func.call(&mut self.store, &params, &mut out) {
            Ok(()) => Ok(out.first().and_then(from_i)),
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
