//! Plan and apply against the fake engine (`fake`): every refusal is plan's, apply runs the
//! plan's actions in order and reads nothing, a failed replacement puts the old container
//! back, destroy keeps volumes unless told. No Docker needed; the real engine's behaviour is
//! `tests/provision.rs`'s.

use super::{
    apply::{Report, Summary, apply, destroy},
    engine::{ContainerState, EngineState, Owner},
    error::ProvisionError,
    fake::{Call, FakeEngine, State},
    plan::{Action, Plan, PlanOptions, aside_name, fingerprint, plan, read_engine},
    spec::Stack,
};

/// A stack `s`: network `net` (on `subnet`), volume `vol`, containers `db` (mounting `vol`)
/// and `web` (its volumes from `db`), both on `net`; `web` runs `web_image` with `env`.
fn stack(subnet: &str, web_image: &str, env: &str) -> Stack {
    let text = format!(
        r#"[stack]
name = "s"

[networks.net]
subnet = "{subnet}"

[volumes.vol]

[containers.db]
image = "img:1"
mounts = ["vol:/data"]
networks.net = {{ aliases = ["db"] }}

[containers.web]
image = "{web_image}"
environment = {{ COLOR = "{env}" }}
volumes_from = ["db"]
networks.net = {{ aliases = ["app"] }}
"#
    );
    match Stack::parse(&text, "s.toml") {
        Ok(stack) => stack,
        Err(e) => panic!("test stack: {e}"),
    }
}

fn base() -> Stack {
    stack("10.1.0.0/24", "img:1", "blue")
}

/// An engine that has the images `img:1` (not `img:2`) and nothing else.
fn empty_engine() -> FakeEngine {
    FakeEngine::new(State {
        images: [("img:1".to_string(), "sha256:img1".to_string())].into(),
        ..Default::default()
    })
}

async fn read(engine: &FakeEngine, stack: &Stack) -> EngineState {
    match read_engine(engine, stack).await {
        Ok(state) => state,
        Err(e) => panic!("read: {e}"),
    }
}

async fn planned(engine: &FakeEngine, stack: &Stack, recreate: bool) -> Plan {
    let state = read(engine, stack).await;
    let options = PlanOptions {
        adopt: false,
        recreate,
    };
    match plan(stack, &state, options) {
        Ok(plan) => plan,
        Err(e) => panic!("plan: {e}"),
    }
}

/// Plans and applies; the lines reported, or the error.
async fn run(
    engine: &FakeEngine,
    stack: &Stack,
    recreate: bool,
) -> (Result<Summary, ProvisionError>, Vec<String>) {
    let plan = planned(engine, stack, recreate).await;
    let mut lines = Vec::new();
    let result = apply(engine, stack, &plan, &mut |r: Report<'_>| {
        lines.push(r.to_string())
    })
    .await;
    (result, lines)
}

/// An engine where `base()` was applied.
async fn applied() -> FakeEngine {
    let engine = empty_engine();
    let (result, _) = run(&engine, &base(), false).await;
    if let Err(e) = result {
        panic!("first apply: {e}");
    }
    engine
}

fn running(state: &State, name: &str) -> bool {
    state.containers.get(name).is_some_and(|c| c.running)
}

#[tokio::test]
async fn a_network_to_recreate_with_someone_else_s_container_is_refused_at_plan() {
    let engine = applied().await;
    engine.edit(|s| {
        s.containers.insert(
            "intruder".to_string(),
            ContainerState {
                owner: Owner::default(),
                running: true,
                networks: vec!["net".to_string()],
                ..Default::default()
            },
        );
    });
    let moved = stack("10.2.0.0/24", "img:1", "blue");
    let state = read(&engine, &moved).await;
    engine.clear_calls();
    let options = PlanOptions {
        adopt: false,
        recreate: true,
    };
    let refused = plan(&moved, &state, options);
    let Err(error) = &refused else {
        panic!("expected a refusal, got {refused:?}");
    };
    let ProvisionError::NotOwned { kind, name, stack } = error else {
        panic!("expected NotOwned, got {error:?}");
    };
    assert_eq!(
        (*kind, name.as_str(), stack.as_str()),
        (
            "container (attached to a network being recreated)",
            "intruder",
            "s"
        )
    );
    // The words apply used to print when it refused it.
    let text = error.to_string();
    assert!(
        text.starts_with("container (attached to a network being recreated) `intruder` exists but does not belong to stack `s`"),
        "{text}"
    );
    assert!(engine.calls().is_empty(), "plan itself reads nothing");
    assert_eq!(
        engine.state().networks["net"].subnet.as_deref(),
        Some("10.1.0.0/24")
    );
}

#[tokio::test]
async fn a_drifted_network_in_use_needs_recreate_at_plan_and_is_recreated_with_it() {
    let engine = applied().await;
    let moved = stack("10.2.0.0/24", "img:1", "blue");
    let state = read(&engine, &moved).await;
    let refused = plan(&moved, &state, PlanOptions::default());
    let Err(ProvisionError::NetworkInUse {
        network,
        diff,
        attached,
    }) = &refused
    else {
        panic!("expected NetworkInUse, got {refused:?}");
    };
    assert_eq!(network, "net");
    assert_eq!(diff, "subnet 10.1.0.0/24 → 10.2.0.0/24");
    assert_eq!(*attached, 2, "db and web");

    let plan = planned(&engine, &moved, true).await;
    assert!(plan.actions.contains(&Action::RecreateNetwork {
        name: "net".to_string(),
        diff: "subnet 10.1.0.0/24 → 10.2.0.0/24".to_string(),
        attached: vec!["db".to_string(), "web".to_string()],
    }));
    for name in ["db", "web"] {
        assert!(
            plan.actions.iter().any(|a| matches!(a,
                Action::RecreateContainer { name: n, removed_with_network: true, stale_aside: false, .. }
                    if n == name)),
            "{name} recreated after its network: {plan}"
        );
    }
    engine.clear_calls();
    let mut lines = Vec::new();
    let summary = apply(&engine, &moved, &plan, &mut |r| lines.push(r.to_string())).await;
    assert!(summary.is_ok(), "{summary:?}");
    let calls = engine.calls();
    let at = |call: Call| calls.iter().position(|c| *c == call);
    // Its containers go first, then the network; they come back on the new one.
    assert!(at(Call::RemoveContainer("web".into(), false)) < at(Call::RemoveNetwork("net".into())));
    assert!(at(Call::RemoveNetwork("net".into())) < at(Call::CreateNetwork("net".into())));
    assert!(at(Call::CreateNetwork("net".into())) < at(Call::CreateContainer("db".into())));
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Rename(..))),
        "nothing to put aside: {calls:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("removing web from net")),
        "{lines:?}"
    );
    let state = engine.state();
    assert_eq!(state.networks["net"].subnet.as_deref(), Some("10.2.0.0/24"));
    assert!(running(&state, "db") && running(&state, "web"));
    assert!(state.volumes.contains_key("vol"), "volumes stay");
}

#[tokio::test]
async fn apply_makes_the_plan_s_calls_in_its_order_and_reads_nothing() {
    let engine = empty_engine();
    let stack = stack("10.1.0.0/24", "img:2", "blue");
    let plan = planned(&engine, &stack, false).await;
    assert_eq!(
        plan.actions,
        vec![
            Action::PullImage {
                image: "img:2".into(),
                container: "web".into()
            },
            Action::CreateNetwork("net".into()),
            Action::CreateVolume("vol".into()),
            Action::CreateContainer("db".into()),
            Action::CreateContainer("web".into()),
        ]
    );
    assert!(
        plan.to_string()
            .contains("+ image img:2 (missing, will be pulled for web)"),
        "{plan}"
    );
    // Behind plan's back the image arrives: apply does not look, it pulls as planned.
    engine.edit(|s| {
        s.images.insert("img:2".into(), "sha256:img2".into());
    });
    engine.clear_calls();
    let mut lines = Vec::new();
    let summary = apply(&engine, &stack, &plan, &mut |r| lines.push(r.to_string())).await;
    assert_eq!(
        summary.ok(),
        Some(Summary {
            created: 4,
            ..Default::default()
        })
    );
    let calls = engine.calls();
    assert!(!calls.iter().any(Call::is_read), "{calls:?}");
    assert_eq!(
        calls,
        vec![
            Call::Pull("img:2".into()),
            Call::CreateNetwork("net".into()),
            Call::CreateVolume("vol".into()),
            Call::CreateContainer("db".into()),
            Call::Start("db".into()),
            Call::CreateContainer("web".into()),
            Call::Start("web".into()),
        ]
    );
    assert_eq!(
        lines,
        vec![
            "      pulling img:2 for web",
            "[1/4] + network net",
            "[2/4] + volume vol",
            "[3/4] + container db",
            "[4/4] + container web",
        ]
    );
    // The same stack again: nothing to do, nothing missing.
    let again = planned(&engine, &stack, false).await;
    assert_eq!(again.changes(), 0, "{again}");
}

#[tokio::test]
async fn a_replacement_that_cannot_be_created_puts_the_old_container_back() {
    let engine = applied().await;
    let old = engine.state().containers["web"].clone();
    let changed = stack("10.1.0.0/24", "img:1", "red");
    engine.fail_on(Call::CreateContainer("web".into()));
    engine.clear_calls();
    let (result, _) = run(&engine, &changed, false).await;
    let Err(ProvisionError::RolledBack { container, .. }) = &result else {
        panic!("expected RolledBack, got {result:?}");
    };
    assert_eq!(container, "web");
    let state = engine.state();
    let web = &state.containers["web"];
    assert_eq!(web.spec, old.spec, "the old container, under its own name");
    assert_ne!(
        web.spec.as_deref(),
        Some(fingerprint(&changed.containers["web"]).as_str())
    );
    assert!(web.running);
    assert!(!state.containers.contains_key(&aside_name("web")));
    let calls = engine.calls();
    let aside = aside_name("web");
    let writes: Vec<&Call> = calls.iter().filter(|c| !c.is_read()).collect();
    assert_eq!(
        writes,
        vec![
            &Call::Rename("web".into(), aside.clone()),
            &Call::CreateContainer("web".into()),
            &Call::Stop("web".into()),
            &Call::RemoveContainer("web".into(), false),
            &Call::Rename(aside, "web".into()),
            &Call::Start("web".into()),
        ]
    );
}

#[tokio::test]
async fn a_replacement_that_cannot_start_puts_the_old_container_back() {
    let engine = applied().await;
    let old = engine.state().containers["web"].clone();
    engine.fail_on(Call::Start("web".into()));
    let (result, _) = run(&engine, &stack("10.1.0.0/24", "img:1", "red"), false).await;
    assert!(
        matches!(&result, Err(ProvisionError::RolledBack { container, .. }) if container == "web"),
        "{result:?}"
    );
    let state = engine.state();
    assert_eq!(state.containers["web"].spec, old.spec);
    assert!(running(&state, "web"), "started again");
    assert!(!state.containers.contains_key(&aside_name("web")));
}

#[tokio::test]
async fn an_old_container_left_aside_is_removed_before_the_next_replacement() {
    let engine = applied().await;
    let aside = aside_name("web");
    engine.edit(|s| {
        let mut left = s.containers["web"].clone();
        left.running = false;
        s.containers.insert(aside.clone(), left);
    });
    let changed = stack("10.1.0.0/24", "img:1", "red");
    let plan = planned(&engine, &changed, false).await;
    assert!(
        plan.actions.iter().any(|a| matches!(a,
            Action::RecreateContainer { name, stale_aside: true, removed_with_network: false, .. }
                if name == "web")),
        "{plan}"
    );
    let (result, _) = run(&engine, &changed, false).await;
    assert!(result.is_ok(), "{result:?}");
    let state = engine.state();
    assert_eq!(
        state.containers["web"].spec.as_deref(),
        Some(fingerprint(&changed.containers["web"]).as_str())
    );
    assert!(!state.containers.contains_key(&aside));
}

#[tokio::test]
async fn destroy_keeps_volumes_unless_told() {
    let engine = applied().await;
    engine.clear_calls();
    let mut lines = Vec::new();
    let summary = destroy(&engine, &base(), false, false, &mut |r| {
        lines.push(r.to_string())
    })
    .await;
    assert_eq!(
        summary.ok(),
        Some(Summary {
            removed: 3,
            kept: 1,
            ..Default::default()
        })
    );
    let state = engine.state();
    assert!(state.containers.is_empty() && state.networks.is_empty());
    assert!(state.volumes.contains_key("vol"), "kept");
    let calls = engine.calls();
    assert!(
        !calls.iter().any(|c| matches!(c, Call::RemoveVolume(_))),
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::RemoveContainer("db".into(), false)),
        "anonymous volumes stay too: {calls:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("volume vol kept")),
        "{lines:?}"
    );

    let summary = destroy(&engine, &base(), true, false, &mut |_| {}).await;
    assert!(summary.is_ok(), "{summary:?}");
    assert!(engine.state().volumes.is_empty(), "--volumes removes it");
}

/// A stack using a network and a volume made outside it (`external = true`).
fn external_stack() -> Stack {
    let text = r#"[stack]
name = "s"

[networks.shared]
external = true

[volumes.data]
external = true

[containers.app]
image = "img:1"
mounts = ["data:/data"]
networks.shared = { aliases = ["app"] }
"#;
    match Stack::parse(text, "s.toml") {
        Ok(stack) => stack,
        Err(e) => panic!("test stack: {e}"),
    }
}

#[tokio::test]
async fn external_networks_and_volumes_must_exist_are_used_as_they_are_and_never_removed() {
    let engine = empty_engine();
    let stack = external_stack();
    // Missing: refused at plan, naming what to create.
    let state = read(&engine, &stack).await;
    let refused = plan(&stack, &state, PlanOptions::default());
    let Err(error @ ProvisionError::ExternalMissing { .. }) = &refused else {
        panic!("expected ExternalMissing, got {refused:?}");
    };
    assert!(
        error.to_string().contains("docker network create shared"),
        "{error}"
    );
    // Made by someone else (no stack label): used, not refused as not ours.
    engine.edit(|s| {
        s.networks.insert(
            "shared".into(),
            super::engine::NetworkState {
                driver: "bridge".into(),
                subnet: Some("10.9.0.0/24".into()),
                ..Default::default()
            },
        );
        s.volumes.insert("data".into(), Owner::default());
    });
    engine.clear_calls();
    let (result, _) = run(&engine, &stack, false).await;
    assert!(result.is_ok(), "{result:?}");
    let calls = engine.calls();
    assert!(
        !calls.iter().any(|c| matches!(
            c,
            Call::CreateNetwork(_) | Call::CreateVolume(_) | Call::RemoveNetwork(_)
        )),
        "{calls:?}"
    );
    assert!(running(&engine.state(), "app"));
    // Destroy, volumes included: both stay.
    let summary = destroy(&engine, &stack, true, false, &mut |_| {}).await;
    assert!(summary.is_ok(), "{summary:?}");
    let state = engine.state();
    assert!(state.networks.contains_key("shared") && state.volumes.contains_key("data"));
    assert!(!state.containers.contains_key("app"));
}
