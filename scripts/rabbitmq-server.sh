#!/bin/sh
# Runs a throwaway RabbitMQ in the foreground on loopback, for trying the
# [events] amqp sink by hand (the tests use test/helpers/rabbitmq.ts, which
# does the same from Node). Everything lives in one temp dir; epmd is our
# own, on its own port, and is stopped when the broker exits.
#
#   scripts/rabbitmq-server.sh [AMQP_PORT]      (default 5672)
#   then: [events] amqp.url = amqp://guest:guest@127.0.0.1:AMQP_PORT
set -eu
PORT=${1:-5672}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/capstan-rabbitmq-XXXXXX")
EPMD_PORT=$((PORT + 30000))
echo 'loopback_users = none' > "$DIR/rabbitmq.conf"
echo '[].' > "$DIR/enabled_plugins"
epmd -port "$EPMD_PORT" &
EPMD_PID=$!
trap 'kill "$EPMD_PID" 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM
SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$SERVER" ] || SERVER=rabbitmq-server
echo "RabbitMQ on amqp://guest:guest@127.0.0.1:$PORT (data in $DIR); Ctrl-C stops it" >&2
HOME="$DIR" ERL_EPMD_PORT="$EPMD_PORT" \
RABBITMQ_NODE_PORT="$PORT" RABBITMQ_DIST_PORT=$((PORT + 20000)) RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
RABBITMQ_NODENAME="capstan_$$@localhost" RABBITMQ_MNESIA_BASE="$DIR/mnesia" RABBITMQ_LOG_BASE="$DIR/log" \
RABBITMQ_CONFIG_FILE="$DIR/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" RABBITMQ_LOGS=- \
  "$SERVER"
