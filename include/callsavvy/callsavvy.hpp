// callsavvy/callsavvy.hpp — the umbrella header: include this one header (or the generated single header
// single_include/callsavvy/callsavvy.hpp) to get the whole library: the client, the typed endpoints and their
// catalog, the rate limiter, batches and contact imports (with their CSV reader), and the webhook listener
// with its event catalog, request verification and signatures. The test helpers (callsavvy/testing/: the mock
// server and the webhook sender) are included on their own.
#pragma once

#include <callsavvy/api/catalog.hpp>
#include <callsavvy/batch.hpp>
#include <callsavvy/bucket_store.hpp>
#include <callsavvy/client.hpp>
#include <callsavvy/config.hpp>
#include <callsavvy/contacts.hpp>
#include <callsavvy/csv.hpp>
#include <callsavvy/envelope.hpp>
#include <callsavvy/error.hpp>
#include <callsavvy/http/message.hpp>
#include <callsavvy/http/parser.hpp>
#include <callsavvy/http/serializer.hpp>
#include <callsavvy/http/url.hpp>
#include <callsavvy/limiter.hpp>
#include <callsavvy/net/proxy.hpp>
#include <callsavvy/net/tls.hpp>
#include <callsavvy/rate_limit_options.hpp>
#include <callsavvy/version.hpp>
#include <callsavvy/webhook/address.hpp>
#include <callsavvy/webhook/events.hpp>
#include <callsavvy/webhook/listener.hpp>
#include <callsavvy/webhook/signature.hpp>
#include <callsavvy/webhook/verify.hpp>
