#!/usr/bin/env python3
"""Publishes orders and messages to Herald over gRPC (service herald.v1.Broker).

Moves one order through its lifecycle with PublishOrder, shows that a late (stale) version is
refused, then publishes a message to one channel (Publish, retried once with the same idempotency
key: the retry is a duplicate and not delivered again) and to several (Broadcast).

    python3 -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/herald/v1/order.proto proto/herald/v1/broker.proto
    PYTHONPATH=gen python3 client/examples/python/publish_orders.py [--order o-2001] [--store 42]

Environment: HERALD_GRPC (default 127.0.0.1:50051), HERALD_API_KEY (default none),
HERALD_CA (PEM CA file: connect with TLS).
"""

import argparse
import os
import sys
import time
import uuid

import grpc
from google.protobuf import struct_pb2

from herald.v1 import broker_pb2, broker_pb2_grpc, order_pb2

LIFECYCLE = ["CREATED", "ACCEPTED", "PREPARING", "READY", "DELIVERED"]


def json_value(obj):
    """A google.protobuf.Value holding a JSON-like Python value (dict, list, str, number...)."""
    value = struct_pb2.Value()
    if isinstance(obj, dict):
        value.struct_value.update(obj)
    elif isinstance(obj, list):
        value.list_value.extend(obj)
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, (int, float)):
        value.number_value = obj
    else:
        value.null_value = struct_pb2.NULL_VALUE
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("HERALD_GRPC", "127.0.0.1:50051"))
    parser.add_argument("--order", default="o-2001")
    parser.add_argument("--store", default="42")
    parser.add_argument("--customer", default="c-9")
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
            order = order_pb2.Order(
                id=args.order,
                store_id=args.store,
                customer_id=args.customer,
                items=[
                    order_pb2.OrderItem(
                        sku="ramen", name="Shoyu ramen", quantity=1,
                        unit_price=order_pb2.Money(minor_units=1290, currency="EUR")),
                ],
                total=order_pb2.Money(minor_units=1290, currency="EUR"),
                created_at_ms=int(time.time() * 1000),
            )
            for version, status in enumerate(LIFECYCLE, start=1):
                order.version = version  # must grow: Herald refuses older versions
                order.status = order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status}")
                order.updated_at_ms = int(time.time() * 1000)
                reply = broker.PublishOrder(
                    broker_pb2.PublishOrderRequest(order=order), metadata=metadata, timeout=10)
                print(f"{order.id} v{version} {status.lower():<9} "
                      f"{'applied' if reply.applied else 'stale'}, queued to {reply.queued}")

            order.version = 2
            order.status = order_pb2.ORDER_STATUS_ACCEPTED
            reply = broker.PublishOrder(
                broker_pb2.PublishOrderRequest(order=order), metadata=metadata, timeout=10)
            print(f"{order.id} v2 replayed: {'stale' if reply.stale else 'applied'} "
                  f"(latest version {reply.latest_version})")

            # An idempotency key makes a retry safe: when the first reply was lost (timeout,
            # dropped connection), send the same request again; Herald publishes it only once.
            notice = broker_pb2.PublishRequest(
                channel=f"store:{args.store}",
                data=json_value({"notice": "kitchen closes at 22:00"}),
                idempotency_key=f"notice-{uuid.uuid4()}")
            reply = broker.Publish(notice, metadata=metadata, timeout=10)
            print(f"publish store:{args.store} offset {reply.delivery.offset}, "
                  f"queued to {reply.delivery.queued}")
            retry = broker.Publish(notice, metadata=metadata, timeout=10)
            print(f"publish store:{args.store} retried: "
                  f"{'duplicate' if retry.duplicate else 'published again'}, "
                  f"offset {retry.delivery.offset}")

            channels = [f"store:{args.store}", "news"]
            reply = broker.Broadcast(
                broker_pb2.BroadcastRequest(channels=channels,
                                            data=json_value({"notice": "new menu"})),
                metadata=metadata, timeout=10)
            print(f"broadcast {','.join(d.channel for d in reply.deliveries)}, "
                  f"queued to {reply.queued}")
        except grpc.RpcError as err:
            print(f"herald: {err.code().name} {err.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
