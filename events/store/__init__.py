"""The event store: `protocol.py` is what callers use; the rest are its adapters and their parts.

protocol.py      EventStore, AsyncEventStore, and the neutral values and errors (claims.py, errors.py)
jetstream.py     the thread-side store on JetStream (an eventsourcing persistence module), with snapshots.py
aio.py           the asyncio-side store on JetStream (the GPU runner's)
memory.py        a store in memory, for unit tests of handlers
writeplan.py     what one append sends and how it answers a refusal (pure)
batch.py, directget.py, subscription.py, stream.py, bridge.py   the JetStream wire protocol and the sync bridge
"""
