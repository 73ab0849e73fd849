"""Stand-in for get-pip.py, used by ansible-test when it bootstraps pip in a sanity venv.

ansible-test downloads get-pip.py from a host these machines cannot reach and looks for a cached
copy first. This stand-in installs pip with ensurepip - in a subprocess, because ensurepip
in-process sets PIP_CONFIG_FILE=/dev/null and the next pip would ignore the machine's pip
configuration - and then runs pip with the arguments it was given, minus the options that pip
does not know.
"""
import subprocess
import sys


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    main()
