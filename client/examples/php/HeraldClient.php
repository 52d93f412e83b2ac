<?php
// A minimal client for Herald's HTTP/JSON control API (POST /api/v1/<Method>), on php-curl.
// Requests and replies are the protobuf JSON mapping of herald.v1.Broker's messages
// (proto/herald/v1/broker.proto), as PHP arrays.

declare(strict_types=1);

namespace Herald;

final class HeraldException extends \RuntimeException
{
    /** @param string $grpcCode e.g. "INVALID_ARGUMENT" (the reply's "code") */
    public function __construct(
        string $message,
        public readonly int $httpStatus,
        public readonly string $grpcCode,
    ) {
        parent::__construct($message, $httpStatus);
    }
}

final class Client
{
    /**
     * @param string $baseUrl Herald's HTTP address, e.g. "http://127.0.0.1:8080"
     * @param string $apiKey  Herald's --api-key ("" when none is configured)
     * @param string $caFile  for an https:// address: PEM CAs to verify Herald with ("" for the
     *                        system's)
     */
    public function __construct(
        private readonly string $baseUrl,
        private readonly string $apiKey = '',
        private readonly int $timeoutSeconds = 10,
        private readonly string $caFile = '',
    ) {
    }

    /** Calls one Broker method, e.g. call('Publish', ['channel' => 'news', 'data' => [...]]). */
    public function call(string $method, array $request = []): array
    {
        $headers = ['Content-Type: application/json'];
        if ($this->apiKey !== '') {
            $headers[] = 'Authorization: Bearer ' . $this->apiKey;
        }
        $curl = curl_init(rtrim($this->baseUrl, '/') . '/api/v1/' . $method);
        curl_setopt_array($curl, [
            CURLOPT_POST => true,
            // (object) so that an empty request is sent as {} and not as [].
            CURLOPT_POSTFIELDS => json_encode((object) $request, JSON_THROW_ON_ERROR),
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => $this->timeoutSeconds,
        ]);
        if ($this->caFile !== '') {
            curl_setopt($curl, CURLOPT_CAINFO, $this->caFile);
        }
        $body = curl_exec($curl);
        $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        $error = curl_error($curl);
        curl_close($curl);
        if ($body === false) {
            throw new HeraldException("herald unreachable: $error", 0, 'UNAVAILABLE');
        }
        $reply = json_decode($body, true);
        if ($status !== 200) {
            throw new HeraldException(
                $reply['message'] ?? "HTTP $status",
                $status,
                $reply['code'] ?? 'UNKNOWN',
            );
        }
        return $reply;
    }

    /** Publishes one version of an order (herald.v1.Order as an array) to its channels. */
    public function publishOrder(array $order): array
    {
        return $this->call('PublishOrder', ['order' => $order]);
    }

    /** Publishes any JSON-encodable value to a channel. */
    public function publish(string $channel, mixed $data): array
    {
        return $this->call('Publish', ['channel' => $channel, 'data' => $data]);
    }
}
