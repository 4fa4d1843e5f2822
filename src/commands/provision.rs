//! `netalias provision plan|apply|status|destroy FILE`: the command's edge over the
//! provisioning library: it loads the stack, connects to the engine, and prints what the
//! library decided and did. Nothing is decided here.

use std::process::ExitCode;

use anyhow::Context;

use netalias::{
    cli::ProvisionCommand,
    provision::{
        apply::{ApplyOptions, apply, destroy, selinux_warnings},
        error::ProvisionError,
        plan::{plan, read_engine},
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
        ProvisionCommand::Plan(a) | ProvisionCommand::Status(a) => a,
        ProvisionCommand::Apply { args, .. } | ProvisionCommand::Destroy { args, .. } => args,
    };
    let adopt = args.adopt;
    // Validation first: a bad file creates nothing and never reaches the engine.
    let stack = Stack::load(&args.file)?;
    for warning in selinux_warnings(&stack) {
        eprintln!("warning: {warning}");
    }
    let docker = match &args.docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(ProvisionError::Connect)?
    .negotiate_version()
    .await
    .map_err(ProvisionError::Connect)?;
    let engine = read_engine(&docker).await?;
    match command {
        ProvisionCommand::Plan(_) => {
            println!("{}", plan(&stack, &engine, adopt)?);
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Status(_) => {
            let plan = plan(&stack, &engine, adopt)?;
            println!("{plan}");
            Ok(if plan.changes() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ProvisionCommand::Apply { recreate, .. } => {
            let plan = plan(&stack, &engine, adopt)?;
            if plan.changes() == 0 {
                println!("stack {}: no changes", stack.name());
                return Ok(ExitCode::SUCCESS);
            }
            let started = std::time::Instant::now();
            let summary = apply(
                &docker,
                &stack,
                &plan,
                ApplyOptions { recreate },
                &mut |r| println!("{r}"),
            )
                .await
                .context("apply stopped; what is listed above was done, and running apply again continues from there")?;
            println!(
                "stack {}: {summary} in {:.1} s",
                stack.name(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Destroy { volumes, .. } => {
            let summary =
                destroy(&docker, &stack, volumes, adopt, &mut |r| println!("{r}")).await?;
            println!("stack {}: {summary}", stack.name());
            Ok(ExitCode::SUCCESS)
        }
    }
}
