<?php
// An order service that moves one order through its lifecycle and lets Herald push every step to
// the browsers: the dashboard of the store (channel "store:<id>"), the customer's tracking page
// ("order:<id>", "customer:<id>") and anything watching "orders".
//
// This replaces the Ratchet/Swoole tutorial server (a `clients` set, onOpen/onMessage/onClose,
// and a loop that send()s every update to every client): the service only says what changed;
// Herald holds the connections and fans the update out.
//
//   HERALD_URL=http://127.0.0.1:8080 php order_service.php [ORDER_ID] [STORE_ID] [CUSTOMER_ID]
//
// Environment: HERALD_URL (default http://127.0.0.1:8080; https://… with TLS), HERALD_API_KEY
// (default none), HERALD_CA (PEM CAs to verify an https:// Herald; default the system's),
// HERALD_STEP_DELAY_MS (pause between steps for a live demo; default 0).

declare(strict_types=1);

require __DIR__ . '/HeraldClient.php';

use Herald\Client;
use Herald\HeraldException;

$herald = new Client(getenv('HERALD_URL') ?: 'http://127.0.0.1:8080', getenv('HERALD_API_KEY') ?: '',
                     10, getenv('HERALD_CA') ?: '');
$orderId = $argv[1] ?? 'o-1001';
$storeId = $argv[2] ?? '42';
$customerId = $argv[3] ?? 'c-7';
$delayMs = (int) (getenv('HERALD_STEP_DELAY_MS') ?: 0);

$order = [
    'id' => $orderId,
    'storeId' => $storeId,
    'customerId' => $customerId,
    'items' => [
        ['sku' => 'pizza-margherita', 'name' => 'Margherita', 'quantity' => 2, 'unitPrice' => ['minorUnits' => 950, 'currency' => 'EUR']],
        ['sku' => 'tiramisu', 'name' => 'Tiramisu', 'quantity' => 1, 'unitPrice' => ['minorUnits' => 550, 'currency' => 'EUR']],
    ],
    'total' => ['minorUnits' => 2450, 'currency' => 'EUR'],
    'createdAtMs' => (string) (int) (microtime(true) * 1000),
];

$lifecycle = ['CREATED', 'ACCEPTED', 'PREPARING', 'READY', 'DELIVERED'];
try {
    foreach ($lifecycle as $i => $status) {
        $order['version'] = $i + 1;  // Herald never shows a version after a newer one
        $order['status'] = "ORDER_STATUS_$status";
        $order['updatedAtMs'] = (string) (int) (microtime(true) * 1000);
        $reply = $herald->publishOrder($order);
        printf(
            "%s v%d %-9s %s, queued to %d connection(s)\n",
            $orderId,
            $order['version'],
            strtolower($status),
            $reply['applied'] ? 'applied' : 'stale',
            $reply['queued'],
        );
        if ($delayMs > 0) {
            usleep($delayMs * 1000);
        }
    }

    // A retried or late update (an old version) is refused, never shown after a newer one.
    $order['version'] = 3;
    $order['status'] = 'ORDER_STATUS_PREPARING';
    $reply = $herald->publishOrder($order);
    printf(
        "%s v3 replayed: %s (latest version %s)\n",
        $orderId,
        $reply['stale'] ? 'stale, not delivered' : 'applied',
        $reply['latestVersion'],
    );
} catch (HeraldException $e) {
    fprintf(STDERR, "herald: %s %s (HTTP %d)\n", $e->grpcCode, $e->getMessage(), $e->httpStatus);
    exit(1);
}
