/* The dashboard page served at `/` by the admin HTTP service: admin-dashboard.html, built into
 * the binary as a byte array (src/server/admin/include.am). */
#pragma once
#include <glib.h>

extern const unsigned char kq_admin_dashboard_page[];
extern const gsize kq_admin_dashboard_page_len;
