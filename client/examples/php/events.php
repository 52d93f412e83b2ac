<?php
// Follows Herald's events (GET /api/v1/events, Server-Sent Events) with php-curl: connects,
// disconnects, subscriptions, browser messages, acks, task outcomes, as they happen. Prints one
// line per event and stops after --count events or --seconds. If the stream drops, it
// reconnects with Last-Event-ID and gets exactly the events it missed (Herald keeps the newest
// --sse-replay-events); `event: reset` means some were lost: re-read the state you need.
//
//   php events.php [--count N] [--seconds S] [--type connect,disconnect] [--channel C] [--user U]
//
// Environment: HERALD_URL (default http://127.0.0.1:8080), HERALD_API_KEY, and
// HERALD_LAST_EVENT_ID to resume after an event id printed by an earlier run.

declare(strict_types=1);

$options = getopt('', ['count:', 'seconds:', 'type:', 'channel:', 'user:']);
$count = (int) ($options['count'] ?? 10);
$seconds = (int) ($options['seconds'] ?? 60);
$query = http_build_query(array_filter([
    'type' => $options['type'] ?? null,
    'channel' => $options['channel'] ?? null,
    'user' => $options['user'] ?? null,
]));
$url = rtrim(getenv('HERALD_URL') ?: 'http://127.0.0.1:8080', '/') . '/api/v1/events'
    . ($query === '' ? '' : "?$query");
$apiKey = getenv('HERALD_API_KEY') ?: '';
$lastEventId = getenv('HERALD_LAST_EVENT_ID') ?: '';
$deadline = microtime(true) + $seconds;
$seen = 0;

/** One line for an event: "<id> <type> <connection> channel=… data=… code=… reason=…". */
function describe(string $id, string $type, array $event): string
{
    if ($type === 'reset') {
        return "$id reset: events after {$event['lastEventId']} are gone; re-read your state";
    }
    $line = "$id $type " . ($event['connectionId'] ?? '');
    if (($event['channel'] ?? '') !== '') {
        $line .= " channel={$event['channel']}";
    }
    if (array_key_exists('data', $event)) {
        $line .= ' data=' . json_encode($event['data'], JSON_UNESCAPED_SLASHES);
    }
    if (($event['code'] ?? 0) !== 0) {
        $line .= " code={$event['code']} reason=" . json_encode($event['reason']);
    }
    if (($event['queue'] ?? '') !== '') {
        $line .= " queue={$event['queue']} task={$event['taskId']} attempt={$event['attempt']}";
    }
    return $line;
}

while ($seen < $count && microtime(true) < $deadline) {
    $buffer = '';
    $headers = ['Accept: text/event-stream'];
    if ($apiKey !== '') {
        $headers[] = "Authorization: Bearer $apiKey";
    }
    if ($lastEventId !== '') {
        $headers[] = "Last-Event-ID: $lastEventId";
    }
    $curl = curl_init($url);
    curl_setopt_array($curl, [
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_TIMEOUT => max(1, (int) ceil($deadline - microtime(true))),
        // Called with each piece of the stream as it arrives; returning less than its length
        // ends the transfer (after --count events).
        CURLOPT_WRITEFUNCTION => function ($curl, string $chunk) use (&$buffer, &$seen, &$lastEventId, $count): int {
            if (curl_getinfo($curl, CURLINFO_RESPONSE_CODE) !== 200) {
                $buffer .= $chunk;  // an error reply: JSON, printed below
                return strlen($chunk);
            }
            $buffer .= $chunk;
            while (($end = strpos($buffer, "\n\n")) !== false) {
                $block = substr($buffer, 0, $end);
                $buffer = substr($buffer, $end + 2);
                $id = $type = $data = '';
                foreach (explode("\n", $block) as $line) {
                    if (str_starts_with($line, ':')) {
                        continue;  // a heartbeat
                    }
                    [$field, $value] = array_pad(explode(': ', $line, 2), 2, '');
                    match ($field) {
                        'id' => $id = $value,
                        'event' => $type = $value,
                        'data' => $data = $value,
                        default => null,
                    };
                }
                if ($id !== '') {
                    $lastEventId = $id;
                }
                if ($type === '') {
                    continue;
                }
                echo describe($id, $type, json_decode($data, true) ?? []), "\n";
                if ($type !== 'reset' && ++$seen >= $count) {
                    return 0;
                }
            }
            return strlen($chunk);
        },
    ]);
    curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    if ($status !== 200) {
        $reply = json_decode($buffer, true);
        fwrite(STDERR, "herald: HTTP $status " . ($reply['message'] ?? curl_strerror(0)) . "\n");
        exit(1);
    }
    if ($seen < $count && microtime(true) < $deadline) {
        usleep(200000);  // the stream dropped: resume after $lastEventId
    }
}
