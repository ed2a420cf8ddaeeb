//! The Windows service manager's view of a running host: once `rkms service run` has
//! registered with it, the host's states (starting, running, stopping, stopped) are reported
//! here; outside a service every report is a no-op.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use windows_service::service::{
    ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::ServiceStatusHandle;

static HANDLE: OnceLock<ServiceStatusHandle> = OnceLock::new();
static CHECKPOINT: AtomicU32 = AtomicU32::new(0);

/// Keeps the handle the service manager gave when the service registered.
pub fn set_handle(handle: ServiceStatusHandle) {
    let _ = HANDLE.set(handle);
}

/// Tells the service manager the service's state (nothing when not running as a service).
pub fn report(state: ServiceState, exit: Option<ServiceExitCode>) {
    let Some(handle) = HANDLE.get() else {
        return;
    };
    let pending = matches!(
        state,
        ServiceState::StartPending | ServiceState::StopPending
    );
    let status = ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: if state == ServiceState::Running {
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
        } else {
            ServiceControlAccept::empty()
        },
        exit_code: exit.unwrap_or(ServiceExitCode::NO_ERROR),
        checkpoint: if pending {
            CHECKPOINT.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            0
        },
        wait_hint: if pending {
            Duration::from_secs(30)
        } else {
            Duration::ZERO
        },
        process_id: None,
    };
    if let Err(e) = handle.set_service_status(status) {
        tracing::warn!("cannot report the service state to Windows: {e}");
    }
}

/// The host is listening: the service is running (no-op outside the service).
pub fn report_running() {
    report(ServiceState::Running, None);
}

/// The host is still starting (opening or migrating its database): the service manager hears
/// a new check point (no-op outside the service).
pub fn report_starting() {
    report(ServiceState::StartPending, None);
}

/// The host is stopping (no-op outside the service).
pub fn report_stopping() {
    report(ServiceState::StopPending, None);
}
