//! `portctl-engine-op ROOT attach|detach|reattach IMAGE [runtime] [COPY]`: one engine
//! operation on the host under ROOT, for the crash-injection tests (`PORTCTL_FAULT_AT=N`
//! aborts at the N-th injection point).

use portctl_engine::portable::{AttachOptions, CopyMode, DetachOptions, Offline};
use portctl_engine::Host;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let host = Host::new(&args[1]).expect("host root");
    let image = &args[3];
    let runtime = args.get(4).is_some_and(|a| a == "runtime");
    let copy = CopyMode::parse(args.get(5).map(String::as_str).unwrap_or("")).expect("copy mode");
    let opts = AttachOptions {
        matches: vec!["minimal".into()],
        profile: "default".into(),
        runtime,
        copy,
        force: false,
        extensions: Vec::new(),
        relax_extension_check: false,
    };
    let result = match args[2].as_str() {
        "attach" => host.attach(&Offline, image, &opts).map(|_| ()),
        "detach" => host
            .detach(&Offline, image, &DetachOptions::new(runtime, false))
            .map(|_| ()),
        "reattach" => host.reattach(&Offline, image, &opts).map(|_| ()),
        op => panic!("unknown operation {op}"),
    };
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
