//! The Windows service control manager behind [`ServiceManager`], and the service itself:
//! `rkms service run` hands its thread to the service manager, which calls [`service_main`];
//! that runs `serve`, reports Running once the listeners are bound and turns the manager's
//! stop (or system shutdown) into a stop request.

use std::ffi::OsString;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceErrorControl, ServiceExitCode, ServiceInfo,
    ServiceStartType, ServiceState, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_dispatcher;
use windows_service::service_manager::{ServiceManager as Manager, ServiceManagerAccess};

use crate::platform::windows as status;

use super::{ManagerError, ServiceManager, ServiceSpec, State, Status, SERVICE_NAME};

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_ALREADY_RUNNING: i32 = 1056;

fn map_err(e: windows_service::Error) -> ManagerError {
    if let windows_service::Error::Winapi(io) = &e {
        match io.raw_os_error() {
            Some(ERROR_ACCESS_DENIED) => return ManagerError::AccessDenied,
            Some(ERROR_SERVICE_DOES_NOT_EXIST) => return ManagerError::NotInstalled,
            _ => return ManagerError::Other(format!("Windows service manager: {io}")),
        }
    }
    ManagerError::Other(format!("Windows service manager: {e}"))
}

/// The system's words for an error (windows-service's own hide them).
fn describe(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    }
}

fn os_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

fn connect(access: ServiceManagerAccess) -> Result<Manager, ManagerError> {
    Manager::local_computer(None::<&str>, access).map_err(map_err)
}

fn info(spec: &ServiceSpec) -> ServiceInfo {
    ServiceInfo {
        name: spec.name.clone().into(),
        display_name: spec.display_name.clone().into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: spec.executable.clone(),
        launch_arguments: spec.arguments.clone(),
        dependencies: vec![],
        account_name: Some(OsString::from(&spec.account)),
        account_password: None,
    }
}

/// The local computer's service control manager.
pub struct Scm;

impl ServiceManager for Scm {
    fn query(&self, name: &str) -> Result<Option<Status>, ManagerError> {
        let manager = connect(ServiceManagerAccess::CONNECT)?;
        let service = match manager.open_service(name, ServiceAccess::QUERY_STATUS) {
            Ok(s) => s,
            Err(e) if os_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        let status = service.query_status().map_err(map_err)?;
        let state = match status.current_state {
            ServiceState::Stopped => State::Stopped,
            ServiceState::StartPending => State::StartPending,
            ServiceState::StopPending => State::StopPending,
            ServiceState::Running => State::Running,
            _ => State::Paused,
        };
        Ok(Some(Status {
            state,
            pid: status.process_id.filter(|p| *p != 0),
            checkpoint: status.checkpoint,
        }))
    }

    fn install(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError> {
        let manager =
            connect(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
        let service = manager
            .create_service(&info(spec), ServiceAccess::CHANGE_CONFIG)
            .map_err(map_err)?;
        service.set_description(&spec.description).map_err(map_err)
    }

    fn reconfigure(&mut self, spec: &ServiceSpec) -> Result<(), ManagerError> {
        let manager = connect(ServiceManagerAccess::CONNECT)?;
        let service = manager
            .open_service(&spec.name, ServiceAccess::CHANGE_CONFIG)
            .map_err(map_err)?;
        service.change_config(&info(spec)).map_err(map_err)?;
        service.set_description(&spec.description).map_err(map_err)
    }

    fn uninstall(&mut self, name: &str) -> Result<(), ManagerError> {
        let manager = connect(ServiceManagerAccess::CONNECT)?;
        let service = manager
            .open_service(name, ServiceAccess::DELETE)
            .map_err(map_err)?;
        service.delete().map_err(map_err)
    }

    fn start(&mut self, name: &str) -> Result<(), ManagerError> {
        let manager = connect(ServiceManagerAccess::CONNECT)?;
        let service = manager
            .open_service(name, ServiceAccess::START)
            .map_err(map_err)?;
        match service.start::<&str>(&[]) {
            Err(e) if os_code(&e) == Some(ERROR_SERVICE_ALREADY_RUNNING) => Ok(()),
            other => other.map_err(map_err),
        }
    }

    fn stop(&mut self, name: &str) -> Result<(), ManagerError> {
        let manager = connect(ServiceManagerAccess::CONNECT)?;
        let service = manager
            .open_service(name, ServiceAccess::STOP)
            .map_err(map_err)?;
        match service.stop() {
            Ok(_) => Ok(()),
            Err(e) if os_code(&e) == Some(ERROR_SERVICE_NOT_ACTIVE) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    fn prepare_directory(&mut self, path: &str, grantee: Option<&str>) -> Result<(), ManagerError> {
        std::fs::create_dir_all(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => ManagerError::AccessDenied,
            _ => ManagerError::Other(format!("cannot create the directory: {e}")),
        })?;
        let Some(grantee) = grantee else {
            return Ok(());
        };
        // Modify rights, inherited by the files and directories created in it.
        let out = std::process::Command::new("icacls")
            .arg(path)
            .arg("/grant")
            .arg(format!("{grantee}:(OI)(CI)M"))
            .arg("/Q")
            .output()
            .map_err(|e| ManagerError::Other(format!("cannot run icacls: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(ManagerError::Other(format!(
            "icacls could not give {grantee} write access: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

/// What `serve` runs, handed from `run_under_scm` to the service manager's thread.
type Body = Box<dyn FnOnce() -> u8 + Send>;
static BODY: Mutex<Option<Body>> = Mutex::new(None);
static EXIT: AtomicU8 = AtomicU8::new(0);

/// Hands this thread to the service manager, which runs `body` as the service; returns its
/// exit status once the service has stopped.
pub fn run_under_scm(body: Body) -> u8 {
    *BODY.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => EXIT.load(Ordering::SeqCst),
        Err(e) => crate::commands::usage(&format!(
            "`rkms service run` is started by the Windows service manager ({}); to run rkms \
             in this console use `rkms serve`",
            describe(&e)
        )),
    }
}

/// Called by the service manager on its own thread (service arguments are not used: the
/// options are on the command line `install` registered).
extern "system" fn ffi_service_main(_argc: u32, _argv: *mut *mut u16) {
    service_main();
}

fn service_main() {
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            status::report(ServiceState::StopPending, None);
            crate::server::shutdown::request_stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "error: cannot register with the Windows service manager: {}",
                describe(&e)
            );
            EXIT.store(1, Ordering::SeqCst);
            return;
        }
    };
    status::set_handle(handle);
    status::report(ServiceState::StartPending, None);
    let body = BODY.lock().unwrap_or_else(|e| e.into_inner()).take();
    let code = body.map_or(1, |b| b());
    EXIT.store(code, Ordering::SeqCst);
    let exit = match code {
        0 => ServiceExitCode::NO_ERROR,
        n => ServiceExitCode::ServiceSpecific(n.into()),
    };
    status::report(ServiceState::Stopped, Some(exit));
}
