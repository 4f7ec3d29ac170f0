# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab services for prodready.deploy: each module starts, stops and probes one service."""
