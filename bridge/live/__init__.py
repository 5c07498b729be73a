"""Live delivery: each socket's bounded queue (:mod:`.outbox`), the fan-out that fills the
queues of a call_id's sockets (:mod:`.fanout`, :mod:`.redis_fanout`), and one class for a
socket's whole life (:mod:`.socket`)."""
