#!/usr/bin/env python3
"""Hands delivery tasks to courier workers through Herald over gRPC (DispatchTask, ListQueues).

Each task goes to exactly one WebSocket connection that joined the queue (a courier app sent
{"join":{"queue":"couriers"}}); the worker gets a `task` frame and acks its deliveryId. A task
not acked within its deadline goes to another worker. With no worker free, it waits in the queue.

    python3 -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/herald/v1/order.proto proto/herald/v1/broker.proto
    PYTHONPATH=gen python3 client/examples/python/dispatch_tasks.py [--queue couriers] [--tasks 2]

Environment: HERALD_GRPC (default 127.0.0.1:50051), HERALD_API_KEY (default none),
HERALD_CA (PEM CA file: connect with TLS).
"""

import argparse
import os
import sys

import grpc
from google.protobuf import struct_pb2

from herald.v1 import broker_pb2, broker_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("HERALD_GRPC", "127.0.0.1:50051"))
    parser.add_argument("--queue", default="couriers")
    parser.add_argument("--tasks", type=int, default=2, help="how many tasks to dispatch")
    parser.add_argument("--store", default="42")
    parser.add_argument("--ack-deadline-ms", type=int, default=30000,
                        help="time a worker has to ack before the task is redelivered")
    args = parser.parse_args()

    api_key = os.environ.get("HERALD_API_KEY", "")
    metadata = [("authorization", f"Bearer {api_key}")] if api_key else []

    # HERALD_CA: TLS to a herald started with --tls-cert, verified against this PEM file.
    ca = os.environ.get("HERALD_CA", "")
    if ca:
        with open(ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(args.server, credentials)
    else:
        channel = grpc.insecure_channel(args.server)
    with channel:
        broker = broker_pb2_grpc.BrokerStub(channel)
        try:
            for i in range(1, args.tasks + 1):
                data = struct_pb2.Value()  # any JSON; here what the courier app shows
                data.struct_value.update({"order": f"o-{3000 + i}",
                                          "pickup": f"store {args.store}"})
                reply = broker.DispatchTask(
                    broker_pb2.DispatchTaskRequest(queue=args.queue, data=data,
                                                   ack_deadline_ms=args.ack_deadline_ms),
                    metadata=metadata, timeout=10)
                worker = reply.assigned_connection_id or "no worker free, waiting"
                print(f"task {reply.task_id} -> {worker} (queue depth {reply.queue_depth})")

            queues = broker.ListQueues(broker_pb2.ListQueuesRequest(), metadata=metadata,
                                       timeout=10)
            for q in queues.queues:
                if q.queue == args.queue:
                    print(f"queue {q.queue}: {q.workers} worker(s), {q.waiting} waiting, "
                          f"{len(q.in_flight)} in flight, {q.dispatched} dispatched, "
                          f"{q.acked} acked")
        except grpc.RpcError as err:
            print(f"herald: {err.code().name} {err.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
