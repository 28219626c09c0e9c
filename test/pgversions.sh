# shellcheck shell=bash
# test/pgversions.sh - the suite on the PostgreSQL majors the host lacks.
#
# Sourced by test/run after test/lib.sh.  The host (Debian 12) has
# PostgreSQL 15, which test/run tests directly; 17 and 18 come from newer
# Debian suites, each in a chroot that debootstrap builds (cached as a
# tarball in $ETHWHALE_CACHE/chroots, keyed by the suite and package list):
#
#   15  the host (bookworm); a bookworm chroot for its Debian package, and
#       for all of its rows with EW_PG15_CHROOT=1 (the host's install untouched)
#   17  trixie                       18  sid
#   16  none: no Debian suite serves postgresql-16 (bookworm-backports,
#       trixie and trixie-backports do not)
#
# Only PostgreSQL runs in the chroot (the build, make install, pg_regress,
# initdb/pg_ctl, the package build); the GraphQL test servers, the real Geth
# and pytest run on the host and reach the chroot's cluster on 127.0.0.1
# (the same network namespace; its backends are in the host's /proc).  No
# mounts are made: the cluster's directory is EW_TMPDIR/pgNN inside the
# chroot, linked from the same path on the host (test/lib.sh start_cluster),
# and the whole chroot lives under EW_TMPDIR, removed by cleanup.
#
# Functions:
#   pgv_suite V              the Debian suite serving postgresql-V (fails if none)
#   pgv_run V [deb]          one version's rows: build-V (-Werror; with
#                            -DUSE_ASSERT_CHECKING on EW_ASSERT_PG), regress-V,
#                            pytest-V, deb-V (as selected by --suite); with
#                            "deb", deb-V alone
#   ensure_pg_root V DIR     the chroot for V at DIR, from the cache or built
#
# Environment: EW_DEBIAN_MIRROR [http://deb.debian.org/debian],
# EW_ASSERT_PG [18] the version built with -DUSE_ASSERT_CHECKING.
# Each version's logs go to $EW_LOGDIR/pgV/.

# The chroot's format: bump it when ensure_pg_root changes what it builds.
PGV_ROOT_FORMAT=1
PGV_MIRROR=${EW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PGV_SRC=/build/ethwhale_fdw   # the sources inside a chroot
# The host's own PostgreSQL and the versions test/run knows (used there).
# shellcheck disable=SC2034
PGV_HOST=15
# shellcheck disable=SC2034
PGV_ALL="15 16 17 18"

pgv_suite() {
	case $1 in
	15) echo bookworm ;;
	17) echo trixie ;;
	18) echo sid ;;
	*) return 1 ;;
	esac
}

# The Debian packages of version V's chroot: the server, pg_cron and the
# headers, the extension's build dependencies, and what building its Debian
# package needs (pg_buildext is in postgresql-server-dev-all).
pgv_packages() {
	echo "postgresql-$1 postgresql-$1-cron postgresql-server-dev-$1 libcurl4-openssl-dev libjansson-dev" \
		"build-essential postgresql-server-dev-all debhelper dpkg-dev fakeroot"
}

# pgv_in DIR CMD...: run CMD as root in the chroot DIR with a plain PATH.
pgv_in() {
	local dir=$1
	shift
	chroot "$dir" env PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8 "$@"
}

# _pgv_build_root V SUITE DIR LOG: debootstrap SUITE into DIR and install V's
# packages; no service is started (policy-rc.d) and the packaged cluster is
# dropped.
_pgv_build_root() {
	local v=$1 suite=$2 dir=$3 log=$4
	ew_log "building the PostgreSQL $v chroot: debootstrap $suite (log: ${log#"$EW_ROOT"/})"
	rm -rf "$dir" && mkdir -p "$dir" || return 1
	ew_quietly "$log" debootstrap --variant=minbase "$suite" "$dir" "$PGV_MIRROR" || return 1
	# sid's Release file may be older than its Valid-Until on a mirror that
	# is not refreshed; the packages are signed all the same.
	echo 'Acquire::Check-Valid-Until "false";' >"$dir/etc/apt/apt.conf.d/90ethwhale"
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d" && chmod 755 "$dir/usr/sbin/policy-rc.d"
	# The packages' scripts want /proc (sid's postgresql-common runs
	# systemd-tmpfiles); mounted for the install only (cleanup in test/lib.sh
	# unmounts what is left under EW_TMPDIR after an interruption).
	mount -t proc proc "$dir/proc" || return 1
	local rc=0
	# shellcheck disable=SC2046  # the package list is space-separated words
	ew_quietly "$log" pgv_in "$dir" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "$@" && apt-get clean' \
		sh $(pgv_packages "$v") || rc=1
	umount "$dir/proc" || umount -l "$dir/proc" || return 1
	[ "$rc" = 0 ] || return 1
	if [ -d "$dir/etc/postgresql/$v/main" ]; then
		ew_quietly "$log" pgv_in "$dir" pg_dropcluster "$v" main || return 1
	fi
	rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
	# POSIX shared memory of the cluster: /dev/shm is a plain directory here.
	chmod 1777 "$dir/dev/shm" "$dir/tmp"
}

# pgv_tarball V: the cache tarball of V's chroot (keyed by what goes in).
pgv_tarball() {
	local v=$1 suite key
	suite=$(pgv_suite "$v") || return 1
	key=$(printf '%s\n' "$PGV_ROOT_FORMAT" "$suite" "$PGV_MIRROR" "$(pgv_packages "$v")" | sha256sum | cut -c1-16)
	echo "$ETHWHALE_CACHE/chroots/pg$v-$suite-$key.tar.zst"
}

# ensure_pg_root V DIR: V's chroot at DIR, extracted from the cache, or
# built (and then cached).  Sets PGV_ROOT_HOW (cached/built).
ensure_pg_root() {
	local v=$1 dir=$2 suite tarball log="$EW_LOGDIR/chroot.log"
	suite=$(pgv_suite "$v") || return 1
	tarball=$(pgv_tarball "$v") || return 1
	mkdir -p "$ETHWHALE_CACHE/chroots"
	if [ -s "$tarball" ]; then
		rm -rf "$dir" && mkdir -p "$dir" || return 1
		ew_log "PostgreSQL $v chroot from the cache: ${tarball#"$ETHWHALE_CACHE"/}"
		ew_quietly "$log" tar -C "$dir" --numeric-owner --zstd -xpf "$tarball" || return 1
		PGV_ROOT_HOW=cached
		return 0
	fi
	_pgv_build_root "$v" "$suite" "$dir" "$log" || return 1
	# Cache it (written aside, then renamed: a concurrent run sees a whole
	# file or none); older keys of this version are dropped.
	rm -f "$ETHWHALE_CACHE/chroots/pg$v-"*.tar.zst
	if ! ew_quietly "$log" tar -C "$dir" --numeric-owner --zstd -cf "$tarball.tmp.$$" . ||
		! mv -f "$tarball.tmp.$$" "$tarball"; then
		rm -f "$tarball.tmp.$$"
		ew_warn "could not cache the chroot in $tarball"
	fi
	PGV_ROOT_HOW=built
}

# pgv_copy_sources DIR: the repository's files (not its build output, logs
# or node_modules) into DIR.
pgv_copy_sources() {
	rm -rf "$1" && mkdir -p "$1" || return 1
	(cd "$EW_ROOT" && tar --exclude=./.git --exclude=./test/results --exclude=node_modules \
		--exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude=./regression.diffs \
		--exclude=./regression.out --exclude=./results -cf - .) | tar -C "$1" -xf -
}

# ------------------------------------------------------------------ the rows

# pgv_regress V ROOT: make installcheck inside the chroot, against its
# cluster, with the host's test servers.
pgv_regress() {
	local v=$1 root=$2 log="$EW_LOGDIR/installcheck.log" p=0 f=0 line a b
	ew_log "suite pg_regress on PostgreSQL $v"
	# (timeout runs programs, not shell functions: chroot itself here)
	# shellcheck disable=SC2153  # PGHOST etc.: exported by start_cluster
	run_logged "$log" "${EW_REGRESS_TIMEOUT:-1200}" chroot "$root" env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 LC_ALL=C.UTF-8 \
		PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" PGDATABASE="$PGDATABASE" \
		EW_CSV_ENDPOINT="$EW_CSV_ENDPOINT" EW_FAULT_ENDPOINT="$EW_FAULT_ENDPOINT" \
		EW_PYFAULT_ENDPOINT="$EW_PYFAULT_ENDPOINT" EW_GEN_ENDPOINT="$EW_GEN_ENDPOINT" \
		EW_PLAIN_ENDPOINT="$EW_PLAIN_ENDPOINT" \
		EW_SERVER_DATA="$EW_SERVER_DATA" \
		make -C "$PGV_SRC" installcheck PG_CONFIG="$EW_PG_BINDIR/pg_config"
	if line=$(grep -oE 'All [0-9]+ tests passed' "$log" | tail -n 1); then
		p=$(grep -oE '[0-9]+' <<<"$line")
	elif line=$(grep -oE '[0-9]+ of [0-9]+ tests (failed|passed)' "$log" | tail -n 1); then
		a=$(awk '{print $1}' <<<"$line") b=$(awk '{print $3}' <<<"$line")
		case $line in
		*failed) f=$a p=$((b - a)) ;;
		*passed) p=$a f=$((b - a)) ;;
		esac
	fi
	[ "$RC" != 0 ] && [ "$f" = 0 ] && f=1
	if [ "$f" != 0 ] && [ -s "$root$PGV_SRC/regression.diffs" ]; then
		cp "$root$PGV_SRC/regression.diffs" "$EW_LOGDIR/regression.diffs"
		echo "----- regression.diffs on $v (first 200 lines; ${EW_LOGDIR#"$EW_ROOT"/}/regression.diffs) -----"
		head -n 200 "$EW_LOGDIR/regression.diffs"
		echo "-----"
		# what the tests printed, for a new expected/NAME_N.out
		rm -rf "$EW_LOGDIR/regress-results"
		cp -r "$root$PGV_SRC/results" "$EW_LOGDIR/regress-results" 2>/dev/null || true
	fi
	record "regress-$v" "$p" "$f" 0
}

# pgv_deb V ROOT TARBALL: build postgresql-V-ethwhale-fdw in the chroot
# (debian/, pg_buildext), install it with dpkg into a clean copy of the
# chroot, start that copy's cluster, CREATE EXTENSION and scan the host's
# generated-chain server.
pgv_deb() {
	local v=$1 root=$2 log="$EW_LOGDIR/deb.log" clean="$EW_TMPDIR/clean-$1" deb out pkg=/build/pkg/ethwhale-fdw
	local debs=()
	ew_log "suite deb on PostgreSQL $v: dpkg-buildpackage, dpkg -i in a clean chroot, CREATE EXTENSION"
	: >"$log"
	if ! pgv_copy_sources "$root$pkg" ||
		! ew_quietly "$log" pgv_in "$root" sh -c "cd $pkg && export PG_SUPPORTED_VERSIONS=$v && pg_buildext updatecontrol &&
			DEB_BUILD_OPTIONS='nocheck parallel=$(nproc)' dpkg-buildpackage -b -us -uc"; then
		record "deb-$v" 0 1 0 "(dpkg-buildpackage failed: ${log#"$EW_ROOT"/})"
		return
	fi
	debs=("$root/build/pkg/postgresql-$v-ethwhale-fdw_"*.deb)
	deb=${debs[0]}
	if ! [ -f "$deb" ]; then
		record "deb-$v" 0 1 0 "(no postgresql-$v-ethwhale-fdw .deb was built)"
		return
	fi
	cp "$deb" "$EW_LOGDIR/"
	if ! ensure_pg_root "$v" "$clean" || ! cp "$deb" "$clean/tmp/" ||
		! ew_quietly "$log" pgv_in "$clean" dpkg -i "/tmp/${deb##*/}"; then
		record "deb-$v" 0 1 0 "(dpkg -i into a clean chroot failed: ${log#"$EW_ROOT"/})"
		rm -rf "$clean"
		return
	fi
	EW_PG_ROOT=$clean EW_PG_CLUSTER=pgdeb-$v
	if ! start_cluster ""; then
		record "deb-$v" 0 1 0 "(the clean chroot's cluster did not start)"
	else
		out=$(pgv_in "$clean" "$EW_PG_BINDIR/psql" -X -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres \
			-d postgres -v endpoint="$EW_GEN_ENDPOINT" 2>&1 <<'EOF'
CREATE EXTENSION ethwhale_fdw;
CREATE SERVER gen FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'endpoint');
CREATE USER MAPPING FOR CURRENT_USER SERVER gen;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER gen INTO public;
SELECT extversion FROM pg_extension WHERE extname = 'ethwhale_fdw';
SELECT count(*) || ' blocks' FROM eth_block WHERE number BETWEEN 100 AND 109;
EOF
		) || true
		printf '%s\n' "$out" >>"$log"
		if grep -qx '10 blocks' <<<"$out" && grep -qx "$(sed -n "s/^default_version = '\(.*\)'/\1/p" \
			"$EW_ROOT/ethwhale_fdw.control")" <<<"$out"; then
			record "deb-$v" 1 0 0 "(${deb##*/})"
		else
			printf '%s\n' "$out" | tail -n 20 >&2
			record "deb-$v" 0 1 0 "(CREATE EXTENSION or the scan failed: ${log#"$EW_ROOT"/})"
		fi
		stop_cluster
	fi
	EW_PG_ROOT=$root EW_PG_CLUSTER=pg$v
	rm -rf "$clean"
}

# pgv_run V: every selected row of version V, with the cluster of its
# chroot; the host's cluster is stopped by then.
pgv_run() {
	local v=$1 only=${2:-} suite root="$EW_TMPDIR/root-$1" t0=$SECONDS t1 assert="" times=""
	local logdir=$EW_LOGDIR
	if ! suite=$(pgv_suite "$v"); then
		record "pg$v" 0 0 0 "(not run: no Debian suite serves postgresql-$v)"
		return 0
	fi
	EW_LOGDIR="$logdir/pg$v"
	rm -rf "$EW_LOGDIR" && mkdir -p "$EW_LOGDIR"
	ew_log "PostgreSQL $v (Debian $suite, chroot $root; logs ${EW_LOGDIR#"$EW_ROOT"/})"
	if ! ensure_pg_root "$v" "$root"; then
		record "setup-$v" 0 1 0 "(the $suite chroot: ${EW_LOGDIR#"$EW_ROOT"/}/chroot.log)"
		EW_LOGDIR=$logdir
		return 0
	fi
	times="chroot $((SECONDS - t0))s $PGV_ROOT_HOW"
	# Only this version from here on: its binaries, its cluster, its chroot.
	local save_bindir=$EW_PG_BINDIR save_config=$EW_PG_CONFIG
	export EW_PG_ROOT=$root EW_PG_CLUSTER=pg$v EW_PG_BINDIR=/usr/lib/postgresql/$v/bin
	export EW_PG_EXEC="chroot $root" EW_PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config
	export EW_GETH_DATADIR="$EW_TMPDIR/geth-$v"
	export EW_PG_MAJOR=$v

	t1=$SECONDS
	[ "$v" = "${EW_ASSERT_PG:-18}" ] && assert=-DUSE_ASSERT_CHECKING
	if [ "$only" = deb ]; then
		:
	elif pgv_copy_sources "$root$PGV_SRC" &&
		ew_quietly "$EW_LOGDIR/build.log" pgv_in "$root" make -C "$PGV_SRC" -j"$(nproc)" \
			PG_CONFIG="$EW_PG_CONFIG" ${assert:+COPT=$assert} &&
		ew_quietly "$EW_LOGDIR/build.log" pgv_in "$root" make -C "$PGV_SRC" install PG_CONFIG="$EW_PG_CONFIG"; then
		record "build-$v" 1 0 0 "(-Werror${assert:+ $assert}, $((SECONDS - t1))s)"
	else
		record "build-$v" 0 1 0 "(${EW_LOGDIR#"$EW_ROOT"/}/build.log)"
		EW_PG_BINDIR=$save_bindir EW_PG_CONFIG=$save_config EW_LOGDIR=$logdir
		unset EW_PG_ROOT EW_PG_CLUSTER EW_PG_EXEC EW_PG_MAJOR
		return 0
	fi

	if [ "$only" != deb ] && { want_suite regress || want_suite pytest; }; then
		# pg_regress's server-side COPY reads the CSV copy at the same path
		# inside the chroot.
		if ! mkdir -p "$root$EW_SERVER_DATA" || ! cp -a "$EW_SERVER_DATA"/. "$root$EW_SERVER_DATA"/; then
			ew_warn "could not copy the test data into the chroot"
		fi
		# The tests' own files for server-side COPY (EW_SERVER_TMPDIR): a
		# directory of the chroot, linked from the same path on the host.
		export EW_SERVER_TMPDIR="$EW_TMPDIR/srvtmp-$v"
		if ! mkdir -p "$root$EW_SERVER_TMPDIR" || ! chmod 1777 "$root$EW_SERVER_TMPDIR" ||
			! ln -sfn "$root$EW_SERVER_TMPDIR" "$EW_SERVER_TMPDIR"; then
			ew_warn "could not make $EW_SERVER_TMPDIR"
		fi
		# Servers of this version's own where rules are spent or set by the
		# tests (faults.json's "times", test_faults.py), as test/run gives
		# each suite: the runs before do not change what this one meets.
		local pids=() name
		for name in fault plain pyfault; do
			case $name in
			fault) [ -f "$EW_ROOT/test/faults.json" ] || continue
				start_graphql_server EW_FAULT_ENDPOINT "fault-$v" --generate 2000 --seed 7 \
					--faults "$EW_ROOT/test/faults.json" ;;
			plain) start_graphql_server EW_PLAIN_ENDPOINT "plain-$v" --generate 2000 --seed 7 ;;
			pyfault) start_graphql_server EW_PYFAULT_ENDPOINT "pyfault-$v" --generate 2000 --seed 7 ;;
			esac || ew_warn "could not start the $name GraphQL server for PostgreSQL $v"
			pids+=("${EW_PIDS[-1]}")
		done
		if start_cluster ""; then
			t1=$SECONDS
			want_suite regress && pgv_regress "$v" "$root" && times+=", regress $((SECONDS - t1))s"
			t1=$SECONDS
			want_suite pytest && EW_ROW_SUFFIX=-$v suite_pytest && times+=", pytest $((SECONDS - t1))s"
			stop_cluster
		else
			record "cluster-$v" 0 1 0 "(PostgreSQL $v did not start: ${EW_LOGDIR#"$EW_ROOT"/})"
		fi
		for name in "${pids[@]}"; do ew_stop_pid "$name"; done
	fi
	t1=$SECONDS
	want_suite deb && pgv_deb "$v" "$root" && times+=", deb $((SECONDS - t1))s"
	ew_log "PostgreSQL $v: $times, all $((SECONDS - t0))s"
	echo "PostgreSQL $v: $times, all $((SECONDS - t0))s" >>"$logdir/pg-times.log"
	EW_PG_BINDIR=$save_bindir EW_PG_CONFIG=$save_config EW_LOGDIR=$logdir
	unset EW_PG_ROOT EW_PG_CLUSTER EW_PG_EXEC EW_SERVER_TMPDIR EW_PG_MAJOR
	rm -rf "$root"
}
