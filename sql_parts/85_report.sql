-- ---------------------------------------------------------------- the HTML report (issue 17)
--
-- ethwhale.report_html(addresses) is one self-contained HTML page (no
-- script, no external resource: a Content-Security-Policy of
-- default-src 'none' keeps the browser from fetching anything): per address
-- its balance in ETH against the ETH/USD price, its value in USD (ETH and
-- priced tokens), its large transfers' counterparties by label, its largest
-- transfers, the reasons of its score and the evidence of the exclusion
-- tests, and the check of the balance against eth_account.  The charts are
-- plain SVG written here; every series is a <polyline class="series"
-- data-series="..."> whose points the plot's data-* attributes map back to
-- values.  scripts/report writes the pages.  See README.md, "Report".

-- ethwhale.html(t): T with &, <, >, " and ' escaped for HTML text and attributes.
CREATE FUNCTION ethwhale.html(t text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t, ''), '&', '&amp;'), '<', '&lt;'),
                                   '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

-- ethwhale.report_num(v, digits): V with thousands separators and DIGITS
-- decimals; compact (k, M, B) when DIGITS is NULL.  '–' for NULL.
CREATE FUNCTION ethwhale.report_num(v numeric, digits int DEFAULT 2)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN v IS NULL THEN '–'
        WHEN digits IS NULL AND abs(v) >= 1e9 THEN to_char(v / 1e9, 'FM999,999,990.0') || 'B'
        WHEN digits IS NULL AND abs(v) >= 1e6 THEN to_char(v / 1e6, 'FM990.0') || 'M'
        WHEN digits IS NULL AND abs(v) >= 1e4 THEN to_char(v / 1e3, 'FM990.0') || 'k'
        WHEN digits IS NULL THEN rtrim(to_char(v, 'FM9,990.99'), '.')
        WHEN digits = 0 THEN trim(to_char(round(v), 'FM999,999,999,999,999,999,990'))
        ELSE trim(to_char(round(v, digits), 'FM999,999,999,999,999,999,990.' || repeat('0', digits)))
    END
$$;

-- ethwhale.report_line_chart(id, title, t, series): an SVG line chart of
-- the SERIES over the times T: a jsonb array of {key, label, color, axis
-- ('left' or 'right'), unit, values} with one value (or null) per time.
-- Each axis is scaled to its own series.  The plot (<g class="plot">)
-- carries its pixel box (data-x0/x1/y0/y1), the time range (data-t-min,
-- data-t-max, epoch seconds) and each axis's value range
-- (data-left-min/max, data-right-min/max): value = min + (y1 - y) / (y1 -
-- y0) * (max - min).  Points are circles with a <title> (a tooltip).
CREATE FUNCTION ethwhale.report_line_chart(id text, title text, t timestamptz[], series jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w int := 900; h int := 300;
    x0 numeric := 90; x1 numeric := 810; y0 numeric := 36; y1 numeric := 250;
    tmin numeric; tmax numeric;
    lmin numeric; lmax numeric; rmin numeric; rmax numeric;
    s jsonb;
    ax text;
    i int;
    v numeric;
    px numeric; py numeric;
    pts text;
    dots text;
    n int;
    lo numeric; hi numeric; pad numeric;
    out text;
    legend text := '';
    lx int := 90;
    has_right bool := false;
    span interval;
    tfmt text;
BEGIN
    IF t IS NULL OR cardinality(t) = 0 THEN
        RETURN format('<p class="empty">%s: nothing synced</p>', ethwhale.html(title));
    END IF;
    tmin := extract(epoch FROM t[1]);
    tmax := extract(epoch FROM t[cardinality(t)]);
    IF tmax <= tmin THEN
        tmin := tmin - 1800; tmax := tmax + 1800;
    END IF;
    span := t[cardinality(t)] - t[1];
    tfmt := CASE WHEN span <= interval '2 days' THEN 'MM-DD HH24:MI' ELSE 'YYYY-MM-DD' END;
    -- the value range of each axis, 5 % added above and below
    FOR ax IN SELECT unnest(ARRAY['left', 'right']) LOOP
        SELECT min(e::numeric), max(e::numeric) INTO lo, hi
        FROM jsonb_array_elements(series) x(s), jsonb_array_elements_text(x.s -> 'values') e
        WHERE coalesce(x.s ->> 'axis', 'left') = ax AND e IS NOT NULL;
        IF lo IS NOT NULL THEN
            pad := CASE WHEN hi = lo THEN greatest(abs(lo) * 0.05, 1) ELSE (hi - lo) * 0.05 END;
            lo := lo - pad;
            hi := hi + pad;
        END IF;
        IF ax = 'left' THEN lmin := lo; lmax := hi; ELSE rmin := lo; rmax := hi; has_right := lo IS NOT NULL; END IF;
    END LOOP;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">',
                  ethwhale.html(id), w, h, w, h, ethwhale.html(title))
        || format('<text class="title" x="%s" y="20">%s</text>', x0, ethwhale.html(title))
        || format('<g class="plot" data-x0="%s" data-x1="%s" data-y0="%s" data-y1="%s" data-t-min="%s" data-t-max="%s" data-left-min="%s" data-left-max="%s" data-right-min="%s" data-right-max="%s">',
                  x0, x1, y0, y1, tmin, tmax, coalesce(lmin::text, ''), coalesce(lmax::text, ''),
                  coalesce(rmin::text, ''), coalesce(rmax::text, ''))
        || format('<rect class="frame" x="%s" y="%s" width="%s" height="%s"/>', x0, y0, x1 - x0, y1 - y0);
    -- grid and axis labels: 5 steps on each axis, 5 on the time axis
    FOR i IN 0..4 LOOP
        py := round(y1 - (y1 - y0) * i / 4, 2);
        out := out || format('<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>', x0, x1, py, py);
        IF lmin IS NOT NULL THEN
            out := out || format('<text class="tick left" x="%s" y="%s">%s</text>', x0 - 6, py + 4,
                                 ethwhale.report_num(lmin + (lmax - lmin) * i / 4, NULL));
        END IF;
        IF has_right THEN
            out := out || format('<text class="tick right" x="%s" y="%s">%s</text>', x1 + 6, py + 4,
                                 ethwhale.report_num(rmin + (rmax - rmin) * i / 4, NULL));
        END IF;
        px := round(x0 + (x1 - x0) * i / 4, 2);
        out := out || format('<text class="tick time" x="%s" y="%s">%s</text>', px, y1 + 18,
                             to_char(to_timestamp(tmin + (tmax - tmin) * i / 4) AT TIME ZONE 'UTC', tfmt));
    END LOOP;
    out := out || format('<text class="axis-unit left" x="%s" y="%s">%s</text>', 8, y0 - 10,
                         ethwhale.html((SELECT string_agg(DISTINCT x.s ->> 'unit', ', ') FROM jsonb_array_elements(series) x(s)
                                        WHERE coalesce(x.s ->> 'axis', 'left') = 'left')));
    IF has_right THEN
        out := out || format('<text class="axis-unit right" x="%s" y="%s">%s</text>', x1 + 6, y0 - 10,
                             ethwhale.html((SELECT string_agg(DISTINCT x.s ->> 'unit', ', ') FROM jsonb_array_elements(series) x(s)
                                            WHERE x.s ->> 'axis' = 'right')));
    END IF;
    out := out || format('<text class="axis-unit time" x="%s" y="%s">UTC</text>', x1, y1 + 34);
    FOR s IN SELECT x.s FROM jsonb_array_elements(series) x(s) LOOP
        ax := coalesce(s ->> 'axis', 'left');
        lo := CASE ax WHEN 'left' THEN lmin ELSE rmin END;
        hi := CASE ax WHEN 'left' THEN lmax ELSE rmax END;
        pts := ''; dots := ''; n := 0;
        FOR i IN 1..cardinality(t) LOOP
            v := (s -> 'values' ->> (i - 1))::numeric;
            CONTINUE WHEN v IS NULL OR lo IS NULL;
            px := round(x0 + (x1 - x0) * (extract(epoch FROM t[i]) - tmin) / (tmax - tmin), 2);
            py := round(y1 - (y1 - y0) * (v - lo) / (hi - lo), 2);
            pts := pts || CASE WHEN n > 0 THEN ' ' ELSE '' END || px || ',' || py;
            IF cardinality(t) <= 120 THEN
                dots := dots || format('<circle class="point" cx="%s" cy="%s" r="2.5"><title>%s UTC: %s %s</title></circle>',
                                       px, py, to_char(t[i] AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                       ethwhale.report_num(v, 2), ethwhale.html(s ->> 'unit'));
            END IF;
            n := n + 1;
        END LOOP;
        CONTINUE WHEN n = 0;
        out := out || format('<g class="series-group" data-series="%s" style="color:%s">', ethwhale.html(s ->> 'key'),
                             ethwhale.html(s ->> 'color'))
            || format('<polyline class="series" data-series="%s" data-axis="%s" data-points="%s" points="%s" fill="none" stroke="%s" stroke-width="2"/>',
                      ethwhale.html(s ->> 'key'), ax, n, pts, ethwhale.html(s ->> 'color'))
            || dots || '</g>';
        legend := legend || format('<g class="legend" data-series="%s"><rect x="%s" y="%s" width="14" height="4" fill="%s"/><text x="%s" y="%s">%s</text></g>',
                                   ethwhale.html(s ->> 'key'), lx, h - 12, ethwhale.html(s ->> 'color'), lx + 18, h - 7,
                                   ethwhale.html(s ->> 'label'));
        lx := lx + 30 + 7 * length(s ->> 'label');
    END LOOP;
    RETURN out || '</g>' || legend || '</svg>';
END
$$;

-- ethwhale.report_bar_chart(id, title, labels, values, unit): horizontal
-- bars, one <rect class="bar" data-label="..." data-value="..."> per label.
CREATE FUNCTION ethwhale.report_bar_chart(id text, title text, labels text[], vals numeric[], unit text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w int := 900;
    bar_h int := 22;
    x0 int := 260; x1 int := 780;
    top int := 36;
    h int;
    vmax numeric;
    i int;
    bw numeric;
    out text;
BEGIN
    IF labels IS NULL OR cardinality(labels) = 0 THEN
        RETURN format('<p class="empty">%s: none</p>', ethwhale.html(title));
    END IF;
    h := top + cardinality(labels) * (bar_h + 6) + 10;
    SELECT max(v) INTO vmax FROM unnest(vals) v;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">',
                  ethwhale.html(id), w, h, w, h, ethwhale.html(title))
        || format('<text class="title" x="10" y="20">%s</text>', ethwhale.html(title));
    FOR i IN 1..cardinality(labels) LOOP
        bw := round((x1 - x0) * vals[i] / nullif(vmax, 0), 2);
        out := out
            || format('<text class="bar-label" x="%s" y="%s">%s</text>', x0 - 8, top + (i - 1) * (bar_h + 6) + 15,
                      ethwhale.html(left(labels[i], 40)))
            || format('<rect class="bar" data-label="%s" data-value="%s" x="%s" y="%s" width="%s" height="%s"><title>%s: %s %s</title></rect>',
                      ethwhale.html(labels[i]), vals[i], x0, top + (i - 1) * (bar_h + 6), coalesce(bw, 0), bar_h,
                      ethwhale.html(labels[i]), ethwhale.report_num(vals[i], 2), ethwhale.html(unit))
            || format('<text class="bar-value" x="%s" y="%s">%s %s</text>', x0 + coalesce(bw, 0) + 6,
                      top + (i - 1) * (bar_h + 6) + 15, ethwhale.report_num(vals[i], NULL), ethwhale.html(unit));
    END LOOP;
    RETURN out || '</svg>';
END
$$;

-- ethwhale.report_step(): the step of the report's charts: the smallest of
-- 5 minutes .. 7 days that cuts the synced range into at most 150 periods.
CREATE FUNCTION ethwhale.report_step()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s FROM unnest(ARRAY['5 minutes', '10 minutes', '30 minutes', '1 hour', '3 hours',
                                                 '6 hours', '12 hours', '1 day', '7 days']::interval[]) s
                     WHERE extract(epoch FROM (SELECT max("timestamp") - min("timestamp") FROM ethwhale.blocks b
                                                WHERE b.chain_id = ethwhale.current_chain()))
                           <= 150 * extract(epoch FROM s)
                     ORDER BY s LIMIT 1), interval '7 days')
$$;

-- ethwhale.report_section(address, step): the part of the report about ADDRESS.
CREATE FUNCTION ethwhale.report_section(address text, step interval)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    c ethwhale.whale_candidates;
    lab ethwhale.address_label;
    anc ethwhale.balance_anchor;
    ts timestamptz[];
    s_bal jsonb; s_px jsonb; s_usd jsonb; s_tok jsonb; s_tot jsonb;
    cp_labels text[]; cp_vals numeric[];
    pc record;
    out text;
    rows_html text;
    chk text;
    k text;
BEGIN
    IF addr !~ '^0x[0-9a-f]{40}$' THEN
        RAISE EXCEPTION 'ethwhale.report_html: "%" is not an address', address
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'An address is 0x followed by 40 hexadecimal digits.';
    END IF;
    SELECT * INTO c FROM ethwhale.whale_candidates w WHERE w.chain_id = ethwhale.current_chain() AND w.address = addr;
    SELECT * INTO lab FROM ethwhale.address_label l WHERE l.address = addr;
    SELECT array_agg(h.period_start ORDER BY h.period_start),
           jsonb_agg(h.balance_eth ORDER BY h.period_start), jsonb_agg(h.eth_usd ORDER BY h.period_start),
           jsonb_agg(round(h.balance_usd, 2) ORDER BY h.period_start),
           jsonb_agg(round(h.token_usd, 2) ORDER BY h.period_start),
           jsonb_agg(round(h.total_usd, 2) ORDER BY h.period_start)
      INTO ts, s_bal, s_px, s_usd, s_tok, s_tot
    FROM ethwhale.balance_history(addr, step) h;
    SELECT * INTO anc FROM ethwhale.balance_anchor x WHERE x.address = addr;
    SELECT * INTO pc FROM ethwhale.price_correlation_stats(addr);

    out := format('<section class="address" id="a-%s" data-address="%s">', addr, addr)
        || format('<h2>%s <code>%s</code></h2>', ethwhale.html(coalesce(lab.label, 'Unlabelled address')), addr)
        || '<p class="verdict">'
        || CASE WHEN c.rank IS NOT NULL THEN format('Whale candidate <b>#%s</b>, score <b>%s</b> = log10(%s USD × %s large transfers)',
                                                    c.rank, c.score, ethwhale.report_num(c.volume_usd, 0), c.large_transfers)
                WHEN c.excluded_reason IS NOT NULL THEN format('Not ranked: <b>%s</b>', ethwhale.html(c.excluded_reason))
                ELSE 'Not in ethwhale.whale_candidates (no transfer above the threshold)' END
        || CASE WHEN lab.category IS NOT NULL THEN format(' · category <i>%s</i>', ethwhale.html(lab.category)) ELSE '' END
        || '</p>';
    -- the balance against the price, and the value in USD
    out := out || ethwhale.report_line_chart('balance-' || addr, 'Balance (ETH) and ETH/USD price', ts,
        jsonb_build_array(
            jsonb_build_object('key', 'balance_eth', 'label', 'balance (ETH, left)', 'color', '#1f5fbf',
                               'axis', 'left', 'unit', 'ETH', 'values', s_bal),
            jsonb_build_object('key', 'eth_usd', 'label', 'ETH/USD (right)', 'color', '#d9822b',
                               'axis', 'right', 'unit', 'USD/ETH', 'values', s_px)));
    out := out || ethwhale.report_line_chart('usd-' || addr, 'Value (USD): ETH balance and priced tokens', ts,
        jsonb_build_array(
            jsonb_build_object('key', 'balance_usd', 'label', 'ETH balance in USD', 'color', '#1f5fbf',
                               'axis', 'left', 'unit', 'USD', 'values', s_usd),
            jsonb_build_object('key', 'token_usd', 'label', 'priced tokens since the first synced block', 'color', '#2e9e5b',
                               'axis', 'left', 'unit', 'USD', 'values', s_tok),
            jsonb_build_object('key', 'total_usd', 'label', 'total', 'color', '#7a3db8',
                               'axis', 'left', 'unit', 'USD', 'values', s_tot)));
    out := out || '<p class="note">'
        || CASE WHEN anc.block IS NOT NULL
                THEN format('The ETH balance is anchored at %s ETH, the balance eth_account reported at the end of block %s, and walked with the synced transactions (value and fees).',
                            ethwhale.report_num(anc.balance * 1e-18, 4), anc.block)
                ELSE 'The node reported no balance at the synced blocks: the ETH balance is unknown (only the changes are).' END
        || ' Tokens: the priced tokens received minus sent since the first synced block, valued at each period''s price.'
        || format(' Price correlation: %s (%s days%s). %s.</p>',
                  coalesce(round(pc.r::numeric, 3)::text, 'undefined'), pc.points,
                  CASE WHEN pc.first_day IS NOT NULL THEN format(', %s .. %s', pc.first_day, pc.last_day) ELSE '' END,
                  ethwhale.html(pc.method));
    -- the counterparties of its large transfers, by label
    SELECT array_agg(g.name ORDER BY g.usd DESC), array_agg(g.usd ORDER BY g.usd DESC) INTO cp_labels, cp_vals
    FROM (SELECT coalesce(l.label, l.category, 'unlabelled') AS name, sum(x.value_usd) AS usd
          FROM (SELECT CASE WHEN t.from_address = addr THEN t.to_address ELSE t.from_address END AS cp, t.value_usd
                FROM ethwhale.large_transfers t
                WHERE t.chain_id = ethwhale.current_chain() AND (t.from_address = addr OR t.to_address = addr)) x
          LEFT JOIN ethwhale.address_label l ON l.address = x.cp
          GROUP BY 1 ORDER BY 2 DESC LIMIT 8) g;
    out := out || ethwhale.report_bar_chart('counterparties-' || addr, 'Counterparties of its large transfers, by label (USD)',
                                            cp_labels, cp_vals, 'USD');
    -- the largest transfers
    SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td class="num">%s %s</td><td class="num">%s</td><td><code>%s</code></td></tr>',
                             to_char(t.block_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                             CASE WHEN t.from_address = addr THEN 'sent to' ELSE 'received from' END,
                             ethwhale.html(coalesce(CASE WHEN t.from_address = addr THEN t.to_label ELSE t.from_label END,
                                                    CASE WHEN t.from_address = addr THEN t.to_address ELSE t.from_address END)),
                             ethwhale.report_num(t.amount, 2), ethwhale.html(t.symbol), ethwhale.report_num(t.value_usd, 0),
                             left(t.tx_hash, 18) || '…'), '' ORDER BY t.value_usd DESC)
      INTO rows_html
    FROM (SELECT * FROM ethwhale.large_transfers t
          WHERE t.chain_id = ethwhale.current_chain() AND (t.from_address = addr OR t.to_address = addr)
          ORDER BY t.value_usd DESC LIMIT 10) t;
    out := out || '<h3>Largest transfers</h3>'
        || coalesce('<table class="transfers"><tr><th>time (UTC)</th><th></th><th>counterparty</th><th>amount</th><th>USD</th><th>tx</th></tr>'
                    || rows_html || '</table>', '<p class="empty">none above ethwhale.whale_threshold_usd</p>');
    -- the reasons and the evidence
    IF c.address IS NOT NULL THEN
        out := out || '<h3>Reasons</h3><table class="reasons">';
        FOR k IN SELECT jsonb_object_keys(c.reasons) ORDER BY 1 LOOP
            out := out || format('<tr><th>%s</th><td>%s</td></tr>', ethwhale.html(k), ethwhale.html(c.reasons ->> k));
        END LOOP;
        out := out || '</table><h3>Exclusion tests</h3><table class="evidence">';
        FOR k IN SELECT jsonb_object_keys(c.evidence) ORDER BY 1 LOOP
            out := out || format('<tr><th>%s</th><td>%s</td></tr>', ethwhale.html(k), ethwhale.html(c.evidence ->> k));
        END LOOP;
        out := out || '</table>';
    END IF;
    -- the walk against the node
    BEGIN
        SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>',
                                 b.block, ethwhale.report_num(b.series_eth, 4), ethwhale.report_num(b.node_eth, 4),
                                 ethwhale.report_num(b.gap_eth, 4), ethwhale.html(b.note)), '' ORDER BY b.block)
          INTO chk
        FROM ethwhale.balance_check(addr, 5) b;
        out := out || '<h3>Balance against eth_account</h3>'
            || coalesce('<table class="check"><tr><th>block</th><th>walk (ETH)</th><th>node (ETH)</th><th>gap (ETH)</th><th></th></tr>'
                        || chk || '</table>', '<p class="empty">no block to compare</p>')
            || '<p class="note">Internal transfers from contracts, block rewards and tips received as a miner, withdrawals and blob fees are not in the transaction list: they show as a gap.</p>';
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        out := out || '<h3>Balance against eth_account</h3><p class="empty">not checked: the node reports no balance for it at the synced blocks</p>';
    END;
    RETURN out || '</section>';
END
$$;

-- ethwhale.report_html(addresses, title, step): the HTML page about
-- ADDRESSES (see the top of this part).  STEP of the charts: by default
-- ethwhale.report_step().
CREATE FUNCTION ethwhale.report_html(addresses text[], title text DEFAULT NULL, step interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st ethwhale.sync_status;
    a text;
    body text := '';
    ttl text := coalesce(title, CASE WHEN cardinality(addresses) = 1 THEN 'ethwhale_fdw report: ' || lower(addresses[1])
                                     ELSE 'ethwhale_fdw report' END);
BEGIN
    IF addresses IS NULL OR cardinality(addresses) = 0 THEN
        RAISE EXCEPTION 'ethwhale.report_html: no address'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give addresses, e.g. ARRAY(SELECT address FROM ethwhale.whale_candidates WHERE rank <= 10 ORDER BY rank).';
    END IF;
    SELECT * INTO st FROM ethwhale.sync_status LIMIT 1;
    FOREACH a IN ARRAY addresses LOOP
        body := body || ethwhale.report_section(a, coalesce(step, ethwhale.report_step()));
    END LOOP;
    RETURN '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        || format('<title>%s</title>', ethwhale.html(ttl))
        || '<style>body{font:14px/1.4 "DejaVu Sans",Arial,sans-serif;margin:24px;color:#222;max-width:940px}'
        || 'h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-top:1px solid #ccc;padding-top:16px}h3{font-size:15px}'
        || 'code{font:12px "DejaVu Sans Mono",monospace}.chart{display:block;margin:8px 0}'
        || '.chart .title{font-weight:bold;font-size:13px}.chart .frame{fill:#fafafa;stroke:#999}'
        || '.chart .grid{stroke:#e2e2e2}.chart .tick,.chart .axis-unit,.chart .legend text{font-size:11px;fill:#555}'
        || '.chart .tick.left{text-anchor:end}.chart .tick.time{text-anchor:middle}.chart .point{fill:currentColor}'
        || '.chart .bar{fill:#1f5fbf}.chart .bar-label{text-anchor:end;font-size:12px}.chart .bar-value{font-size:11px;fill:#555}'
        || 'table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}'
        || 'td.num{text-align:right}.reasons td,.evidence td{font:11px "DejaVu Sans Mono",monospace;word-break:break-all}'
        || '.note,.empty{color:#555;font-size:12px}</style></head><body>'
        || format('<h1>%s</h1>', ethwhale.html(ttl))
        || format('<p class="meta">Server %s: blocks %s .. %s (%s UTC), node head %s; whale threshold %s USD. Made %s UTC.</p>',
                  ethwhale.html(st.server), coalesce(st.first_block::text, '–'), coalesce(st.last_synced_block::text, '–'),
                  coalesce(to_char(st.last_synced_block_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '–'),
                  coalesce(st.node_head::text, '–'), ethwhale.report_num(ethwhale.whale_threshold_usd(), 0),
                  to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
        || body || '</body></html>';
END
$$;
