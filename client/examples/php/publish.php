<?php
// Publish from any PHP page: no library and no extension, only PHP's built-in HTTP stream.
// HERALD_URL (default http://127.0.0.1:8080; https://… for a herald with --tls-cert),
// HERALD_API_KEY and HERALD_CA (PEM CAs for https://, default the system's) come from the
// environment here; in a real page they come from your configuration.
$herald = getenv('HERALD_URL') ?: 'http://127.0.0.1:8080';
$apiKey = getenv('HERALD_API_KEY') ?: '';
$tls = getenv('HERALD_CA') ? ['cafile' => getenv('HERALD_CA')] : [];

// The two lines:
$http = ['method' => 'POST', 'ignore_errors' => true, 'header' => "Content-Type: application/json\r\nAuthorization: Bearer $apiKey", 'content' => json_encode(['channel' => 'news', 'data' => ['text' => 'Kitchen closes at 22:00']])];
echo file_get_contents("$herald/api/v1/Publish", false, stream_context_create(['http' => $http, 'ssl' => $tls]));
