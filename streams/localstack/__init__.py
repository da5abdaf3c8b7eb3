"""Local stack for development and tests: Kafka (KRaft), Prometheus, Alertmanager.

``python -m streams.localstack {up,down,status}`` drives it from the shell; tests
use the launcher classes directly (see ``tests/conftest.py``).
"""

from .alertmanager import LocalAlertmanager, render_alertmanager_config
from .kafka import LocalKafka, render_server_properties
from .ports import free_port, port_open
from .process import ManagedProcess, StackError, Status
from .prometheus import LocalPrometheus, render_prometheus_config
from .webhook import LocalWebhook, WebhookRecorder

__all__ = [
    "LocalAlertmanager",
    "LocalKafka",
    "LocalPrometheus",
    "LocalWebhook",
    "ManagedProcess",
    "StackError",
    "Status",
    "WebhookRecorder",
    "free_port",
    "port_open",
    "render_alertmanager_config",
    "render_prometheus_config",
    "render_server_properties",
]
