//! Deny-everything stubs of the WASI 0.2 interfaces Rust's standard library
//! imports into every `wasm32-wasip2` component (see the parent module for
//! the list and the reasons). Nothing here touches the host: no variable,
//! argument, file, clock or socket is ever visible to a policy.
//!
//! The stubs are defined at version 0.2.6; wasmtime's linker matches any
//! `@0.2.x` import against them (semver-compatible lookup).

use wasmtime::component::{ComponentType, Lift, Linker, Lower, Resource, ResourceType};

use super::{GuestExit, HostState};

/// The version the stubs are defined at.
const WASI: &str = "0.2.6";

/// Host side of `wasi:io/error.error`; never created.
pub(crate) struct IoError;
/// Host side of `wasi:io/poll.pollable`; always ready.
pub(crate) struct Pollable;
/// Host side of `wasi:io/streams.input-stream`; always closed.
pub(crate) struct InputStream;
/// Host side of `wasi:io/streams.output-stream`; rep 1 is stdout, 2 stderr.
pub(crate) struct OutputStream;
/// Host side of `wasi:cli/terminal-input.terminal-input`; never created.
pub(crate) struct TerminalInput;
/// Host side of `wasi:cli/terminal-output.terminal-output`; never created.
pub(crate) struct TerminalOutput;

const STDOUT: u32 = 1;
const STDERR: u32 = 2;

/// `wasi:io/streams.stream-error`.
#[derive(ComponentType, Lift, Lower)]
#[component(variant)]
pub(crate) enum StreamError {
    #[component(name = "last-operation-failed")]
    LastOperationFailed(Resource<IoError>),
    #[component(name = "closed")]
    Closed,
}

type StreamResult<T> = Result<T, StreamError>;

/// How many bytes `check-write` says may be written at once.
const WRITE_BUDGET: u64 = 4096;

fn name(interface: &str) -> String {
    format!("{interface}@{WASI}")
}

/// Defines every stub in `linker`.
///
/// # Errors
///
/// Wasmtime refuses a definition (a bug in this module).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let no_dtor = |_: wasmtime::StoreContextMut<'_, HostState>, _: u32| Ok(());

    let mut error = linker.instance(&name("wasi:io/error"))?;
    error.resource("error", ResourceType::host::<IoError>(), no_dtor)?;
    error.func_wrap(
        "[method]error.to-debug-string",
        |_, (_,): (Resource<IoError>,)| Ok(("no error".to_owned(),)),
    )?;

    let mut poll = linker.instance(&name("wasi:io/poll"))?;
    poll.resource("pollable", ResourceType::host::<Pollable>(), no_dtor)?;
    poll.func_wrap(
        "[method]pollable.ready",
        |_, (_,): (Resource<Pollable>,)| Ok((true,)),
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_, (_,): (Resource<Pollable>,)| Ok(()),
    )?;
    poll.func_wrap("poll", |_, (list,): (Vec<Resource<Pollable>>,)| {
        // Everything is always ready.
        let ready: Vec<u32> = (0..u32::try_from(list.len()).unwrap_or(u32::MAX)).collect();
        Ok((ready,))
    })?;

    let mut streams = linker.instance(&name("wasi:io/streams"))?;
    streams.resource("input-stream", ResourceType::host::<InputStream>(), no_dtor)?;
    streams.resource(
        "output-stream",
        ResourceType::host::<OutputStream>(),
        |mut store, rep| {
            store.data_mut().flush_stdio(rep == STDERR);
            Ok(())
        },
    )?;
    for method in ["read", "blocking-read"] {
        streams.func_wrap(
            &format!("[method]input-stream.{method}"),
            |_, (_, _): (Resource<InputStream>, u64)| {
                Ok((StreamResult::<Vec<u8>>::Err(StreamError::Closed),))
            },
        )?;
    }
    for method in ["skip", "blocking-skip"] {
        streams.func_wrap(
            &format!("[method]input-stream.{method}"),
            |_, (_, _): (Resource<InputStream>, u64)| {
                Ok((StreamResult::<u64>::Err(StreamError::Closed),))
            },
        )?;
    }
    streams.func_wrap(
        "[method]input-stream.subscribe",
        |_, (_,): (Resource<InputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )?;
    streams.func_wrap(
        "[method]output-stream.check-write",
        |_, (_,): (Resource<OutputStream>,)| Ok((StreamResult::Ok(WRITE_BUDGET),)),
    )?;
    for (method, flush) in [("write", false), ("blocking-write-and-flush", true)] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            move |mut store: wasmtime::StoreContextMut<'_, HostState>,
                  (this, bytes): (Resource<OutputStream>, Vec<u8>)| {
                let stderr = this.rep() == STDERR;
                store.data_mut().write_stdio(stderr, &bytes);
                if flush {
                    store.data_mut().flush_stdio(stderr);
                }
                Ok((StreamResult::Ok(()),))
            },
        )?;
    }
    for method in ["flush", "blocking-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |mut store: wasmtime::StoreContextMut<'_, HostState>,
             (this,): (Resource<OutputStream>,)| {
                store.data_mut().flush_stdio(this.rep() == STDERR);
                Ok((StreamResult::Ok(()),))
            },
        )?;
    }
    for method in ["write-zeroes", "blocking-write-zeroes-and-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |_, (_, _): (Resource<OutputStream>, u64)| Ok((StreamResult::Ok(()),)),
        )?;
    }
    for method in ["splice", "blocking-splice"] {
        streams.func_wrap(
            &format!("[method]output-stream.{method}"),
            |_, (_, _, _): (Resource<OutputStream>, Resource<InputStream>, u64)| {
                Ok((StreamResult::<u64>::Err(StreamError::Closed),))
            },
        )?;
    }
    streams.func_wrap(
        "[method]output-stream.subscribe",
        |_, (_,): (Resource<OutputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )?;

    let mut environment = linker.instance(&name("wasi:cli/environment"))?;
    environment.func_wrap("get-environment", |_, ()| {
        Ok((Vec::<(String, String)>::new(),))
    })?;
    environment.func_wrap("get-arguments", |_, ()| Ok((Vec::<String>::new(),)))?;
    environment.func_wrap("initial-cwd", |_, ()| Ok((None::<String>,)))?;

    let mut exit = linker.instance(&name("wasi:cli/exit"))?;
    exit.func_wrap(
        "exit",
        |_, (status,): (Result<(), ()>,)| -> wasmtime::Result<()> {
            let status = if status.is_ok() { "success" } else { "failure" };
            Err(wasmtime::Error::new(GuestExit(status.to_owned())))
        },
    )?;
    exit.func_wrap(
        "exit-with-code",
        |_, (code,): (u8,)| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(GuestExit(format!("code {code}"))))
        },
    )?;

    linker
        .instance(&name("wasi:cli/stdin"))?
        .func_wrap("get-stdin", |_, ()| {
            Ok((Resource::<InputStream>::new_own(0),))
        })?;
    linker
        .instance(&name("wasi:cli/stdout"))?
        .func_wrap("get-stdout", |_, ()| {
            Ok((Resource::<OutputStream>::new_own(STDOUT),))
        })?;
    linker
        .instance(&name("wasi:cli/stderr"))?
        .func_wrap("get-stderr", |_, ()| {
            Ok((Resource::<OutputStream>::new_own(STDERR),))
        })?;

    linker
        .instance(&name("wasi:cli/terminal-input"))?
        .resource(
            "terminal-input",
            ResourceType::host::<TerminalInput>(),
            no_dtor,
        )?;
    linker
        .instance(&name("wasi:cli/terminal-output"))?
        .resource(
            "terminal-output",
            ResourceType::host::<TerminalOutput>(),
            no_dtor,
        )?;
    linker
        .instance(&name("wasi:cli/terminal-stdin"))?
        .func_wrap("get-terminal-stdin", |_, ()| {
            Ok((None::<Resource<TerminalInput>>,))
        })?;
    for stream in ["stdout", "stderr"] {
        linker
            .instance(&name(&format!("wasi:cli/terminal-{stream}")))?
            .func_wrap(&format!("get-terminal-{stream}"), |_, ()| {
                Ok((None::<Resource<TerminalOutput>>,))
            })?;
    }

    // A fixed seed: `HashMap` works and behaves the same on every run.
    linker
        .instance(&name("wasi:random/insecure-seed"))?
        .func_wrap("insecure-seed", |_, ()| {
            Ok(((0x756d_6272_615f_7365_u64, 0x6564_5f66_6978_6564_u64),))
        })?;
    Ok(())
}
