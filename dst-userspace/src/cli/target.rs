//! `dst target`: show what a pod or container reference resolves to on this node (cgroup
//! path and id, layout, QoS, runtime, processes, network namespace).

use std::process::ExitCode;

/// Arguments of `dst target`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["pod", "container"])))]
pub struct Args {
    /// Pod UID, NAMESPACE/NAME or NAMESPACE/LABEL=VALUE (the last two need the Kubernetes API).
    #[arg(long)]
    pub pod: Option<String>,
    /// Container id (or a unique prefix of at least 12 hex digits).
    #[arg(long)]
    pub container: Option<String>,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let r = match dst::k8s::Resolver::host()
        .map_err(dst::k8s::LookupError::from)
        .and_then(|r| dst::k8s::lookup_blocking(&r, args.pod.as_deref(), args.container.as_deref()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dst target: {e}");
            return Ok(ExitCode::from(super::EXIT_ENVIRONMENT));
        }
    };
    let netns = r.netns_path().ok();
    if json {
        let mut v = serde_json::to_value(&r)?;
        v["netns"] = serde_json::json!(netns);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("cgroup    {} (id {})", r.cgroup.display(), r.cgroup_id);
        println!("layout    {:?}", r.layout);
        if let Some(q) = &r.qos {
            println!("qos       {q}");
        }
        if let Some(u) = &r.pod_uid {
            println!("pod       {u}");
        }
        if let (Some(c), Some(rt)) = (&r.container_id, r.runtime) {
            println!("container {c} ({rt})");
        }
        println!("pids      {:?}", r.pids);
        match netns {
            Some(n) => println!("netns     {}", n.display()),
            None => println!("netns     (no process yet)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
