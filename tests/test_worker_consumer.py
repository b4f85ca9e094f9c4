"""The worker's consumer survives a broker connection that fails to close (config/celery.py)."""

from unittest import mock

from celery.worker.consumer import Consumer
from kombu.common import ignore_errors

from config.celery import QuickReconnectConsumer


class BrokenClose:
    """A lost Redis connection whose close fails as kombu's does when it hands unacknowledged
    messages back through a client of the connection being closed."""

    connection_errors = (ConnectionError,)
    channel_errors = ()

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def celerys_own(self, exc):
    """What Celery 5.7's method does with the connection: take it and close it, ignoring
    connection errors only."""
    connection, self.connection = self.connection, None
    ignore_errors(connection, connection.close)


def test_a_lost_connection_that_fails_to_close_does_not_kill_the_worker(caplog):
    consumer = mock.Mock(spec=QuickReconnectConsumer)
    broken = BrokenClose()
    consumer.connection = broken
    with mock.patch.object(Consumer, "on_connection_error_after_connected", celerys_own):
        QuickReconnectConsumer.on_connection_error_after_connected(
            consumer, ConnectionError("lost")
        )
    assert broken.closed == 1
    assert consumer.connection is None
    assert "did not close cleanly" in caplog.text


def test_without_it_the_error_reaches_the_worker():
    """The failure the override guards against (so that the test above means something)."""
    consumer = mock.Mock(spec=Consumer)
    consumer.connection = BrokenClose()
    try:
        celerys_own(consumer, ConnectionError("lost"))
    except AttributeError:
        return
    raise AssertionError("the broken close was expected to raise")
