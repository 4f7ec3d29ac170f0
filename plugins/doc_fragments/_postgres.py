# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection options of the PostgreSQL modules (module_utils/_pg/conn.py).
    DOCUMENTATION = r"""
options:
  url:
    description:
      - PostgreSQL URL, as the application's C(DATABASE_URL) -
        V(postgresql://user:password@host:5432/dbname?sslmode=verify-full). The schemes
        V(postgresql+<driver>://) and V(postgres://) are accepted too.
      - Query parameters are libpq settings (V(sslmode), V(sslrootcert), V(sslcert),
        V(sslkey), V(application_name), V(connect_timeout), V(options) and a few more); an
        unknown one is refused, so a typo cannot silently weaken the connection.
      - The other connection options override the matching part of the URL.
      - The password is never shown - client programs get it through a private passfile,
        never on their command line.
    type: str
  login_host:
    description: Host name, IP address or socket directory of the server.
    type: str
  login_port:
    description: Port of the server. Default V(5432) when the URL gives none.
    type: int
  login_user:
    description: User to connect as.
    type: str
  login_password:
    description: Password of O(login_user). Overrides a password in O(url).
    type: str
  database:
    description: Database to connect to (overrides the database of O(url)).
    type: str
    aliases: [db]
  ssl_mode:
    description:
      - libpq SSL mode; overrides V(sslmode) in O(url). Use V(verify-full) in production.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: CA certificate that signed the server certificate (libpq V(sslrootcert)).
    type: path
    aliases: [ssl_rootcert]
  connect_timeout:
    description:
      - Seconds to wait for a connection before failing.
      - Overrides V(connect_timeout) in O(url); without either, 10 seconds.
    type: int
requirements:
  - psycopg2 (or psycopg2-binary) on the host that runs the module.
notes:
  - Connection failures name the cause and the remedy - a wrong password, an unknown user,
    a missing database, a TLS problem, or an unreachable server - without the password.
"""
