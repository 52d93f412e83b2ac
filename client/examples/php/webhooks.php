<?php
// Herald's webhooks answered by plain PHP: what a Ratchet server did in onOpen, onMessage and
// onClose, as one ordinary script that Herald calls over HTTP. No long-running PHP process.
//
//   HERALD_PROXY_SECRET=change-me php -S 127.0.0.1:8090 client/examples/php/webhooks.php
//   HERALD_PROXY_SECRET=change-me herald \
//       --proxy-connect-url http://127.0.0.1:8090/connect \
//       --proxy-subscribe-url order:=http://127.0.0.1:8090/subscribe \
//       --proxy-rpc-url http://127.0.0.1:8090/rpc \
//       --webhook-url http://127.0.0.1:8090/events
//
// Every request is a JSON POST (herald.v1.ProxyRequest, docs/api.md "Webhooks"), signed:
// X-Herald-Signature = "sha256=" . hex HMAC-SHA256(secret, X-Herald-Timestamp . "." . body).
// The demo's "database" is the two arrays below; a shop reads its session store and orders.
declare(strict_types=1);

const SESSIONS = ['sess-alice' => 'alice', 'sess-bob' => 'bob'];  // PHPSESSID => user
const ORDERS = ['o-1' => 'alice', 'o-2' => 'bob'];                // order id => its customer

function reply(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo $body === [] ? '{}' : json_encode($body, JSON_UNESCAPED_SLASHES);  // [] is not an object
}

function refuse(string $code, string $message): void
{
    reply(200, ['error' => ['code' => $code, 'message' => $message]]);
}

$secret = getenv('HERALD_PROXY_SECRET') ?: '';
$body = file_get_contents('php://input');
$timestamp = $_SERVER['HTTP_X_HERALD_TIMESTAMP'] ?? '';
$expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
// A request not signed with our secret, or older than 5 minutes (a replay), is not Herald's.
if ($secret === '' || !hash_equals($expected, $_SERVER['HTTP_X_HERALD_SIGNATURE'] ?? '')
    || !ctype_digit($timestamp) || abs(time() - (int) $timestamp) > 300) {
    error_log('webhooks: refused a request with a bad signature');
    reply(401, ['error' => ['code' => 'UNAUTHENTICATED', 'message' => 'bad signature']]);
    return;
}
$req = json_decode($body, true);
$user = $req['user'] ?? '';

switch ($req['event'] ?? '') {
    case 'connect':
        // Ratchet's onOpen: who is this? The browser's session cookie says.
        parse_str(strtr($req['headers']['Cookie'] ?? '', ['; ' => '&']), $cookies);
        $who = SESSIONS[$cookies['PHPSESSID'] ?? ''] ?? null;
        if ($who === null) {
            refuse('UNAUTHENTICATED', 'log in first');  // the client is closed with 4003
            return;
        }
        reply(200, ['result' => [
            'user' => $who,
            'data' => ['greeting' => "Hello, $who"],   // in the client's `connected` frame
            'channels' => ["customer:$who"],          // subscribed at once
            'allow' => ['room:*'],                    // may subscribe itself (chat.html's rooms)
        ]]);
        return;

    case 'subscribe':
        // Only the customer of an order may follow it (--proxy-subscribe-url order:=...).
        $order = substr($req['channel'], strlen('order:'));
        if ((ORDERS[$order] ?? null) !== $user) {
            refuse('PERMISSION_DENIED', "order $order is not yours");
            return;
        }
        reply(200, []);
        return;

    case 'rpc':
        // Ratchet's onMessage for requests that want an answer.
        if ($req['method'] === 'order.cancel') {
            $order = $req['data']['orderId'] ?? '';
            if ((ORDERS[$order] ?? null) !== $user) {
                refuse('NOT_FOUND', "no order $order");
                return;
            }
            reply(200, ['result' => ['orderId' => $order, 'cancelled' => true]]);
            return;
        }
        refuse('UNIMPLEMENTED', "no method {$req['method']}");
        return;

    case 'message':
        error_log("webhooks: message from $user: " . json_encode($req['data']));
        reply(200, []);
        return;

    case 'disconnect':
    case 'join':
    case 'leave':
        // Ratchet's onClose (after --disconnect-grace: a page reload is not "gone").
        error_log("webhooks: {$req['event']} $user {$req['connectionId']}");
        reply(200, []);
        return;

    case 'online':
    case 'offline':
        // The user level: online at their first tab, offline when the last one closed and
        // --disconnect-grace passed (a user who closes one of two tabs stays online). Where a
        // Ratchet server kept a user => connections map to "notify when offline".
        error_log("webhooks: $user is {$req['event']}");
        reply(200, []);
        return;
}
reply(400, ['error' => ['code' => 'INVALID_ARGUMENT', 'message' => 'unknown event']]);
