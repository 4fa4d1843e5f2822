//! `netalias provision plan|apply|status|destroy FILE`: the command's edge over the
//! provisioning library: it loads the stack, connects to the engine, and prints what the
//! library decided and did. Nothing is decided here.

use std::process::ExitCode;

use anyhow::Context;

use netalias::{
    cli::ProvisionCommand,
    provision::{
        apply::{Report, apply, destroy, pull_always, selinux_warnings},
        engine::{BollardEngine, is_local_host},
        lock::{LOCK_DIR, lock},
        plan::{PlanOptions, plan, read_engine},
        spec::Stack,
    },
};

use super::report;

pub(crate) fn provision(command: ProvisionCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(error) => {
            eprintln!("netalias: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_provision(command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("netalias provision: {}", report(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run_provision(command: ProvisionCommand) -> anyhow::Result<ExitCode> {
    let args = match &command {
        ProvisionCommand::Status(a) => a,
        ProvisionCommand::Plan { args, .. }
        | ProvisionCommand::Apply { args, .. }
        | ProvisionCommand::Destroy { args, .. } => args,
    };
    let adopt = args.adopt;
    // Validation first: a bad file creates nothing and never reaches the engine.
    // The engine's address as the client will use it: the flag, else DOCKER_HOST.
    let host = args
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok());
    let remote = host.as_deref().filter(|host| !is_local_host(host));
    let stack = Stack::load_for(&args.file, remote)?;
    for warning in selinux_warnings(&stack) {
        eprintln!("warning: {warning}");
    }
    // One apply or destroy of a stack at a time: two would take each other's old container
    // for their own rollback target. Held until this command ends.
    let _lock = match &command {
        ProvisionCommand::Apply { .. } | ProvisionCommand::Destroy { .. } => Some(lock(
            std::path::Path::new(LOCK_DIR),
            stack.name(),
            host.as_deref(),
        )?),
        _ => None,
    };
    let docker = BollardEngine::connect(args.docker_host.as_deref()).await?;
    if let ProvisionCommand::Destroy { volumes, .. } = command {
        let summary = destroy(&docker, &stack, volumes, adopt, &mut |r| println!("{r}")).await?;
        println!("stack {}: {summary}", stack.name());
        return Ok(ExitCode::SUCCESS);
    }
    // `pull = "always"` images are pulled before the read, so that the plan sees what their
    // tags name now; a failed pull has changed nothing.
    if matches!(command, ProvisionCommand::Apply { .. }) {
        pull_always(&docker, &stack, &mut |r| println!("{r}"))
            .await
            .context("apply stopped before changing any network, volume or container; fix the cause and run apply again")?;
    }
    let pulled = matches!(command, ProvisionCommand::Apply { .. });
    // Only `plan` asks the registries what a pull would bring: apply pulls first anyway.
    let ask_registry = matches!(command, ProvisionCommand::Plan { .. });
    let engine = read_engine(&docker, &stack, ask_registry).await?;
    // What the command was told, for the one plan that plan, status and apply each print
    // or carry out.
    let options = match &command {
        ProvisionCommand::Plan { recreate, wait, .. }
        | ProvisionCommand::Apply { recreate, wait, .. } => PlanOptions {
            adopt,
            recreate: *recreate,
            pulled,
            wait: wait.wait,
            wait_timeout: wait.wait_timeout,
        },
        // Whether the engine differs from the file, not whether apply may go: a drifted
        // network in use is a difference, not a refusal (someone else's container on a
        // network to recreate still is one).
        ProvisionCommand::Status(_) | ProvisionCommand::Destroy { .. } => PlanOptions {
            adopt,
            recreate: true,
            pulled,
            ..Default::default()
        },
    };
    // Every refusal is here, before anything is touched: apply carries the plan out.
    let plan = plan(&stack, &engine, options)?;
    match command {
        ProvisionCommand::Plan { .. } => {
            println!("{plan}");
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Status(_) => {
            println!("{plan}");
            Ok(if !plan.differs() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ProvisionCommand::Apply { .. } => {
            if !plan.has_work() {
                println!("stack {}: no changes", stack.name());
                return Ok(ExitCode::SUCCESS);
            }
            let started = std::time::Instant::now();
            // Pulls come before any change: a failed pull has touched nothing, and must not
            // be reported as a half-done apply.
            let mut changed_anything = false;
            let result = apply(&docker, &stack, &plan, &mut |r| {
                if matches!(r, Report::Step { .. } | Report::RemovingFor { .. }) {
                    changed_anything = true;
                }
                println!("{r}")
            })
            .await;
            let summary = result.with_context(|| {
                if changed_anything {
                    "apply stopped; what is listed above was done, and running apply again continues from there"
                } else {
                    "apply stopped before changing any network, volume or container; fix the cause and run apply again"
                }
            })?;
            println!(
                "stack {}: {summary} in {:.1} s",
                stack.name(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        // Handled above: it reads the engine itself.
        ProvisionCommand::Destroy { .. } => Ok(ExitCode::SUCCESS),
    }
}
