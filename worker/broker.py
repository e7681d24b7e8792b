"""kombu's Redis transport, except for what happens to unacked messages when Redis goes away.

When the connection to Redis drops, Celery closes the channel and kombu's Redis QoS puts the
channel's unacked messages back in their queues (`restore_unacked`). With Redis down (a crash,
a restart) that cannot work, and kombu does not try again: the messages stay in Redis'
`unacked` hash (its AOF keeps them) until the visibility timeout, hours. Worse, when the
channel was waiting on a BRPOP, kombu retries the restore on a connection whose client it
already dropped and raises AttributeError, which Celery does not survive there: the worker
process exits. This QoS catches both and hands the delivery tags it could not restore to
worker.reconnect, which restores them as soon as Redis answers again.

Restoring a message whose unit is still held, or that a newer attempt superseded, is harmless:
its task finds the unit busy, stale or done and does nothing (worker/units.py).
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis

from worker import reconnect

log = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client=None) -> None:
        left = list(self._delivered)
        self._delivered.clear()
        try:
            with self.channel.conn_or_acquire(client) as client:
                while left:
                    self.restore_by_tag(left[0], client=client)
                    left.pop(0)
        # AttributeError: kombu dropped the connection's client before this restore (above).
        except (*kombu_redis.Transport.connection_errors, AttributeError) as error:
            log.warning(
                "Redis is away (%r): %d unacked message(s) to restore once it is back",
                error,
                len(left),
            )
            reconnect.orphaned(left)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    """`broker_transport` of mlsys' Celery app (worker/app.py)."""

    Channel = Channel
