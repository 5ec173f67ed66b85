//! Runs the operator's commands: prints text or JSON, and turns every failure into a stable code, a
//! plain message and a non-zero exit — never a panic.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::{Cli, Command, DbCommand, DeviceCommand, ServeArgs, TenantCommand, UserCommand};
use crate::serve::ServerConfig;
use crate::state::ServerSettings;

/// A failed command: a stable code and a message for the operator.
#[derive(Debug)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
}

impl<E: std::fmt::Display> From<(&'static str, E)> for CommandError {
    fn from((code, err): (&'static str, E)) -> Self {
        Self {
            code,
            message: err.to_string(),
        }
    }
}

fn store_err(err: server_store::StoreError) -> CommandError {
    CommandError {
        code: err.code(),
        message: err.to_string(),
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let json = cli.json;
    if let Command::Serve(args) = &cli.command {
        init_tracing(args.log_json);
    } else {
        init_tracing(false);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                json,
                Err(CommandError {
                    code: "runtime",
                    message: e.to_string(),
                }),
            );
        }
    };
    let result = runtime.block_on(dispatch(cli.command, json));
    report(json, result)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STORMOPS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn report(json: bool, result: Result<Option<serde_json::Value>, CommandError>) -> ExitCode {
    match result {
        Ok(Some(value)) => {
            if json {
                println!("{value}");
            } else if let Some(text) = value.get("text").and_then(|t| t.as_str()) {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            if json {
                eprintln!(
                    "{}",
                    json!({ "error": { "code": err.code, "message": err.message } })
                );
            } else {
                eprintln!("error [{}]: {}", err.code, err.message);
            }
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn secret_from_env_or_prompt(
    var: &str,
    prompt: &str,
) -> Result<zeroize::Zeroizing<String>, CommandError> {
    if let Ok(value) = std::env::var(var) {
        return Ok(zeroize::Zeroizing::new(value));
    }
    rpassword::prompt_password(prompt)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| CommandError {
            code: "no_password",
            message: format!("set {var} or run in a terminal to be prompted ({e})"),
        })
}

async fn dispatch(command: Command, json: bool) -> Result<Option<serde_json::Value>, CommandError> {
    match command {
        Command::Db(DbCommand::Init {
            superuser_url,
            database,
            role_prefix,
        }) => {
            // Fixed passwords (a deployment's Secret) keep running servers' URLs valid across re-runs;
            // read from the environment only, never from flags that `ps` would show.
            let passwords = server_store::RolePasswords {
                owner: std::env::var(crate::cli::OWNER_PASSWORD_ENV).ok(),
                app: std::env::var(crate::cli::APP_PASSWORD_ENV).ok(),
                control: std::env::var(crate::cli::CONTROL_PASSWORD_ENV).ok(),
            };
            let out = server_store::init_database_with_passwords(
                &superuser_url,
                &database,
                &role_prefix,
                &passwords,
            )
            .await
            .map_err(store_err)?;
            let text = format!(
                "database {database} is ready (roles {}, {}, {}).\nSTORMOPS_DATABASE_URL={}\nSTORMOPS_CONTROL_DATABASE_URL={}",
                out.roles.owner, out.roles.app, out.roles.control, out.app_url, out.control_url
            );
            Ok(Some(
                json!({ "database": database, "app_url": out.app_url, "control_url": out.control_url, "owner_url": out.owner_url, "text": text }),
            ))
        }
        Command::Serve(args) => {
            serve(args).await?;
            Ok(None)
        }
        Command::Tenant(TenantCommand::Create {
            name,
            plan,
            admin_email,
            admin_name,
            slug,
            control,
        }) => {
            let password =
                secret_from_env_or_prompt("STORMOPS_ADMIN_PASSWORD", "Admin password: ")?;
            let created = crate::provisioning::create_tenant(
                &control.control_database_url,
                &name,
                slug.as_deref(),
                plan,
                &admin_email,
                &admin_name,
                &password,
            )
            .await?;
            let text = format!(
                "tenant {} created: id {}, slug {}, admin {}",
                name, created.tenant_id, created.slug, admin_email
            );
            Ok(Some(
                json!({ "tenant_id": created.tenant_id, "slug": created.slug, "admin_user_id": created.admin_user_id, "crew_id": created.crew_id, "text": text }),
            ))
        }
        Command::Tenant(TenantCommand::List { control }) => {
            let tenants = crate::provisioning::list_tenants(&control.control_database_url).await?;
            let mut text = format!(
                "{:<38} {:<24} {:<12} {:<10} name",
                "id", "slug", "plan", "status"
            );
            for t in &tenants {
                text.push_str(&format!(
                    "\n{:<38} {:<24} {:<12} {:<10} {}",
                    t.id.to_string(),
                    t.slug,
                    t.plan.as_str(),
                    t.status.as_str(),
                    t.name
                ));
            }
            if json {
                return Ok(Some(json!({ "tenants": tenants })));
            }
            Ok(Some(json!({ "text": text })))
        }
        Command::User(UserCommand::Add {
            tenant,
            email,
            name,
            role,
            default_crew,
            control,
        }) => {
            let password = secret_from_env_or_prompt("STORMOPS_USER_PASSWORD", "User password: ")?;
            let user_id = crate::provisioning::add_user(
                &control.control_database_url,
                &tenant,
                &email,
                &name,
                role,
                default_crew,
                &password,
            )
            .await?;
            Ok(Some(
                json!({ "user_id": user_id, "text": format!("user {email} added to {tenant} as {role}: id {user_id}") }),
            ))
        }
        Command::Tenant(TenantCommand::SetPlan(args)) => {
            crate::plan_commands::run_set_plan(args).await.map(Some)
        }
        Command::Tenant(TenantCommand::Usage(args)) => {
            crate::plan_commands::run_usage(args).await.map(Some)
        }
        Command::Tenant(TenantCommand::Invoice(args)) => {
            crate::plan_commands::run_invoice(args).await.map(Some)
        }
        Command::Plan(plan) => crate::plan_commands::run_plan(plan).await.map(Some),
        Command::Health(health) => crate::health_cli::run_health(health).await.map(Some),
        Command::Tenant(lifecycle) => crate::lifecycle_cli::run_tenant(lifecycle).await,
        Command::User(UserCommand::List { tenant, control }) => {
            crate::lifecycle_cli::run_user(UserCommand::List { tenant, control }).await
        }
        Command::Crew(crew) => crate::lifecycle_cli::run_crew(crew).await,
        Command::System(command) => crate::system_cli::run(command).await,
        Command::Device(DeviceCommand::Revoke {
            tenant,
            device,
            control,
        }) => {
            crate::provisioning::revoke_device(
                &control.control_database_url,
                &tenant,
                domain::DeviceId(device),
            )
            .await?;
            Ok(Some(
                json!({ "revoked": device, "text": format!("device {device} of {tenant} revoked") }),
            ))
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), CommandError> {
    let config = ServerConfig {
        database_url: args.database_url,
        control_database_url: args.control_database_url,
        pool_size: args.pool_size,
        settings: ServerSettings {
            train_interval_secs: args.train_interval_secs,
            train_min_new_outcomes: args.train_min_new_outcomes,
            rate_limits: args.rate_limits,
            usage_interval_secs: args.usage_interval_secs,
            ..ServerSettings::default()
        },
    };
    crate::serve::serve_forever(&config, &args.bind)
        .await
        .map_err(|e| CommandError {
            code: "serve",
            message: format!("{e:#}"),
        })
}

impl From<server_store::StoreError> for CommandError {
    fn from(err: server_store::StoreError) -> Self {
        store_err(err)
    }
}
