/* libkestrel: durable Kestrel-compatible queues for C and GLib programs. */
#pragma once
#include <kestrel/error.h>
#include <kestrel/clock.h>
#include <kestrel/settings.h>
#include <kestrel/item.h>
#include <kestrel/latency.h>
#include <kestrel/queue.h>
#include <kestrel/collection.h>
#include <kestrel/journal.h>
#include <kestrel/io.h>


