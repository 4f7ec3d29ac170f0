# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for get-pip.py, which ansible-test downloads from a host the lab cannot reach.

ansible-test runs this in each empty sanity virtualenv with pip's install arguments plus
get-pip's own switches. ensurepip (stdlib, offline) puts the bundled pip in place, which
then installs the exact pip version ansible-test asked for from the package index.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap()
# ensurepip points PIP_CONFIG_FILE at /dev/null and leaves it set; the machine's pip
# configuration (its index and CA bundle) must apply to the real install.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
