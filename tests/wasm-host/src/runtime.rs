//! The one seam between the proxy-wasm host and a Wasm engine.
//!
//! A [`Runtime`] compiles and instantiates a module, linking every function the module imports to
//! [`crate::abi::call_import`]; an [`Instance`] calls the module's exports and reports the fuel
//! (instructions) they used. The ABI itself is written once, against [`Guest`] (the calling
//! module's memory and allocator, and the host's state), so both engines run the same host code.

use crate::abi::{HostState, HostTrap};
use std::fmt;

/// A Wasm value crossing the boundary: the proxy-wasm ABI and the WASI calls the modules import
/// use only 32- and 64-bit integers (pointers and sizes are `i32` on wasm32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val {
    I32(i32),
    I64(i64),
}

impl Val {
    /// The value as an unsigned 32-bit pointer, size, id or enum.
    pub fn u32(self) -> u32 {
        match self {
            Val::I32(v) => v as u32,
            Val::I64(v) => v as u32,
        }
    }
    /// The value as a 64-bit integer.
    pub fn i64(self) -> i64 {
        match self {
            Val::I32(v) => i64::from(v),
            Val::I64(v) => v,
        }
    }
}

/// Which engine runs a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// Wasmtime with Cranelift (compiled ahead of the first call, like V8's optimizing tier).
    Wasmtime,
    /// `wasmi`, an interpreter.
    Interpreter,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 2] = [RuntimeKind::Wasmtime, RuntimeKind::Interpreter];

    /// The name used on command lines and in reports (`wasmtime`, `interpreter`).
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Wasmtime => "wasmtime",
            RuntimeKind::Interpreter => "interpreter",
        }
    }

    /// A runtime of this kind.
    pub fn runtime(self) -> Box<dyn Runtime> {
        match self {
            RuntimeKind::Wasmtime => Box::new(crate::rt_wasmtime::WasmtimeRuntime::new()),
            RuntimeKind::Interpreter => Box::new(crate::rt_wasmi::WasmiRuntime::new()),
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wasmtime" => Ok(RuntimeKind::Wasmtime),
            "interpreter" | "wasmi" => Ok(RuntimeKind::Interpreter),
            other => Err(format!(
                "unknown runtime `{other}` (expected wasmtime or interpreter)"
            )),
        }
    }
}

/// Why a call into the module failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The module called the host in a way the host refuses (an unsupported call, a bad pointer):
    /// the VM is stopped, as Envoy stops a VM that traps.
    #[error("host refused `{0}`")]
    Host(#[from] HostTrap),
    /// The module trapped on its own (`unreachable` after a panic, out of bounds, out of fuel).
    #[error("module trapped in `{export}`: {message}")]
    Trap { export: String, message: String },
    /// The export does not exist or has another signature.
    #[error("export `{export}`: {message}")]
    Export { export: String, message: String },
}

/// A Wasm engine able to run proxy-wasm modules.
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;
    /// Compile `wasm`, link its imports to the host and instantiate it with `state` (without
    /// running `_initialize`: the host does that, as Envoy does, right after).
    fn instantiate(&self, wasm: &[u8], state: HostState) -> anyhow::Result<Box<dyn Instance>>;
}

/// One instantiated module (one VM, in Envoy's terms).
pub trait Instance {
    /// Call an export; `Ok(None)` for exports without a result.
    fn call(&mut self, export: &str, args: &[Val]) -> Result<Option<Val>, CallError>;
    fn has_export(&self, name: &str) -> bool;
    fn state(&mut self) -> &mut HostState;
    fn state_ref(&self) -> &HostState;
    /// Fuel consumed by this instance since it was created: Wasmtime counts one unit per Wasm
    /// operator (a few free ones such as `nop`, `drop` and block markers aside); wasmi counts its
    /// own, coarser, internal instructions. Deterministic for the same module and inputs.
    fn fuel_consumed(&self) -> u64;
}

/// What an import's implementation sees of the module calling it.
pub trait Guest {
    fn state(&mut self) -> &mut HostState;
    /// Copy `len` bytes at `ptr` out of the module's memory.
    fn read(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, HostTrap>;
    /// Copy `bytes` into the module's memory at `ptr`.
    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), HostTrap>;
    /// Allocate `size` bytes in the module (its `malloc` export when it has one, else
    /// `proxy_on_memory_allocate`: the order proxy-wasm-cpp-host uses).
    fn alloc(&mut self, size: u32) -> Result<u32, HostTrap>;
}

/// The fuel budget each instance starts with: far above any request, finite so a runaway loop
/// ends in an out-of-fuel trap instead of hanging a test.
pub const FUEL_BUDGET: u64 = 1 << 40;

/// The glue both engines need, written once: their APIs have the same shape here
/// (`Caller::get_export`, `Extern::into_memory`/`into_func`, `Memory::data`/`data_mut`,
/// `Func::call` over slices of values), so one macro, expanded in each engine's module with
/// that engine's value type, gives value conversions (`to_engine`, `from_engine`) and
/// `CallerGuest`, the [`Guest`] a host call sees (the module's memory and allocator), and
/// `run_import`, what every linked import runs.
macro_rules! engine_glue {
    ($val:ident) => {
        fn to_engine(v: Val) -> $val {
            match v {
                Val::I32(x) => $val::I32(x),
                Val::I64(x) => $val::I64(x),
            }
        }

        fn from_engine(v: &$val) -> Option<Val> {
            match v {
                $val::I32(x) => Some(Val::I32(*x)),
                $val::I64(x) => Some(Val::I64(*x)),
                _ => None,
            }
        }

        /// Run the import `module.name` on the engine's values: the arguments in, the host's
        /// result out in the type the import declares.
        fn run_import(
            caller: &mut Caller<'_, HostState>,
            module: &str,
            name: &str,
            results: &[ValType],
            params: &[$val],
            out: &mut [$val],
        ) -> Result<(), HostTrap> {
            let args: Vec<Val> = params.iter().filter_map(from_engine).collect();
            let mut guest = CallerGuest { caller };
            let ret = call_import(&mut guest, module, name, &args)?;
            if let (Some(slot), Some(v)) = (out.first_mut(), ret) {
                *slot = match results.first() {
                    Some(ValType::I64) => $val::I64(v),
                    _ => $val::I32(v as i32),
                };
            }
            Ok(())
        }

        struct CallerGuest<'a, 'b> {
            caller: &'a mut Caller<'b, HostState>,
        }

        impl CallerGuest<'_, '_> {
            fn memory(&mut self) -> Result<Memory, HostTrap> {
                self.caller
                    .get_export("memory")
                    .and_then(Extern::into_memory)
                    .ok_or(HostTrap::NoMemory)
            }
        }

        impl Guest for CallerGuest<'_, '_> {
            fn state(&mut self) -> &mut HostState {
                self.caller.data_mut()
            }
            fn read(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, HostTrap> {
                let data = self.memory()?.data(&*self.caller);
                let (start, end) = (ptr as usize, ptr as usize + len as usize);
                data.get(start..end)
                    .map(<[u8]>::to_vec)
                    .ok_or(HostTrap::OutOfBounds { ptr, len })
            }
            fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), HostTrap> {
                let data = self.memory()?.data_mut(&mut *self.caller);
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
                let mut out = [$val::I32(0)];
                func.call(&mut *self.caller, &[$val::I32(size as i32)], &mut out)
                    .map_err(|e| HostTrap::AllocatorFailed(e.to_string()))?;
                match out[0] {
                    $val::I32(0) => Err(HostTrap::AllocatorFailed(format!(
                        "returned null for {size} bytes"
                    ))),
                    $val::I32(p) => Ok(p as u32),
                    _ => Err(HostTrap::AllocatorFailed("returned a non-i32".into())),
                }
            }
        }
    };
}
pub(crate) use engine_glue;
