-- The benchmark's DuckDB peer: gold customer_timeline and customer_relationship written by hand in
-- DuckDB SQL from the same silver snapshot (Parquet) the Spark engines read. It follows the rules of
-- jobs/gold/timeline.py and jobs/gold/relationship.py; the bench compares the outputs row for row.
-- customer_bucket is left out: it is Spark's xxhash64, a physical layout aid, not a fact.
-- Parameters are substituted by jobs/bench/peers.py: {silver} (folder), {as_of} (date).

SET TimeZone = 'UTC';

CREATE OR REPLACE MACRO initcap(s) AS
    array_to_string(list_transform(string_split(s, ' '), lambda w: upper(w[1]) || lower(w[2:])), ' ');

CREATE OR REPLACE TABLE rows AS
WITH web AS (
    SELECT
        CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id ELSE 'anon:' || anonymous_id END AS identifier,
        event_time AS occurred_at,
        CASE WHEN device_class = 'app' THEN 'app' ELSE 'web' END AS channel,
        share_via AS platform,
        CASE event WHEN 'Product Viewed' THEN 'product_view' WHEN 'Product Added' THEN 'add_to_cart'
                   WHEN 'Checkout Started' THEN 'checkout' WHEN 'Products Searched' THEN 'search'
                   WHEN 'Product Shared' THEN 'share' WHEN 'Product Added to Wishlist' THEN 'wishlist'
                   WHEN 'Product Reviewed' THEN 'review' END AS event_type,
        event
            || CASE WHEN product_id IS NOT NULL THEN ' ' || product_id ELSE '' END
            || CASE WHEN search_query IS NOT NULL THEN ': "' || search_query || '"' ELSE '' END
            || CASE WHEN share_via IS NOT NULL THEN ' to ' || share_via ELSE '' END
            || CASE WHEN rating IS NOT NULL THEN ', ' || rating || ' stars' ELSE '' END AS summary,
        product_id, utm_campaign AS campaign, NULL::VARCHAR AS order_id, NULL::VARCHAR AS session_id,
        'clickstream_events' AS source_table, message_id AS source_key
    FROM read_parquet('{silver}/clickstream_events/**/*.parquet', hive_partitioning = false)
    WHERE NOT is_bot AND event IN ('Product Viewed', 'Product Added', 'Checkout Started', 'Products Searched',
                                   'Product Shared', 'Product Added to Wishlist', 'Product Reviewed')
), visits AS (
    SELECT
        CASE WHEN user_id IS NOT NULL THEN 'user:' || user_id ELSE 'anon:' || anonymous_id END,
        session_start, CASE WHEN device_class = 'app' THEN 'app' ELSE 'web' END, utm_source, 'visit',
        'Visit: ' || pages || ' page' || CASE WHEN pages = 1 THEN '' ELSE 's' END || ', '
            || CAST(round(duration_seconds / 60) AS INTEGER) || ' min'
            || CASE WHEN utm_campaign IS NOT NULL THEN ', from ' || utm_source || ' (' || utm_campaign || ')'
                    WHEN referrer_host IS NOT NULL THEN ', from ' || referrer_host ELSE ', direct' END
            || CASE WHEN converted THEN ', bought' ELSE '' END,
        NULL::VARCHAR, utm_campaign, CASE WHEN len(order_ids) > 0 THEN order_ids[1] END, session_id,
        'sessions', session_id
    FROM read_parquet('{silver}/sessions/**/*.parquet', hive_partitioning = false)
), social AS (
    SELECT
        'social:' || actor_id_hash, occurred_at, 'social', platform, interaction_type,
        initcap(replace(interaction_type, '_', ' ')) || ' on ' || initcap(platform) || ': ' || coalesce(target_type, '?')
            || CASE WHEN campaign_id IS NOT NULL THEN ' of campaign ' || campaign_id ELSE '' END
            || CASE WHEN product_id IS NOT NULL THEN ' ' || product_id ELSE '' END
            || CASE WHEN rating IS NOT NULL THEN ', ' || rating || ' stars' ELSE '' END,
        product_id, campaign_id, NULL::VARCHAR, NULL::VARCHAR, 'social_interactions', platform || ':' || event_id
    FROM read_parquet('{silver}/social_interactions/**/*.parquet', hive_partitioning = false) s
    LEFT JOIN (SELECT DISTINCT ON (platform, post_id) platform AS p_platform, post_id, campaign_id
               FROM read_parquet('{silver}/campaign_posts/**/*.parquet', hive_partitioning = false)) p
      ON s.platform = p.p_platform AND s.target_id = p.post_id AND s.target_type = 'post'
), history AS (
    SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY updated_at, webhook_id) AS i
    FROM (SELECT *, row_number() OVER (PARTITION BY order_id, status ORDER BY updated_at, webhook_id) AS n
          FROM read_parquet('{silver}/order_status_history/**/*.parquet', hive_partitioning = false))
    WHERE n = 1
), typed AS (
    SELECT *, CASE WHEN i = 1 AND channel = 'store' THEN 'store_purchase' WHEN i = 1 THEN 'order_placed'
                   WHEN status = 'pending' THEN 'order_pending' WHEN status = 'paid' THEN 'order_paid'
                   WHEN status = 'fulfilled' THEN 'order_fulfilled' WHEN status = 'cancelled' THEN 'order_cancelled'
                   WHEN status IN ('refunded', 'partially_refunded') THEN 'order_refunded' END AS event_type
    FROM history
), orders AS (
    SELECT
        'order:' || CAST(order_id AS VARCHAR), updated_at, channel, NULL::VARCHAR, event_type,
        initcap(replace(event_type, '_', ' ')) || ' ' || coalesce(order_name, '#' || CAST(order_id AS VARCHAR)) || ': '
            || coalesce(CAST(total_price AS VARCHAR), '?') || ' ' || coalesce(currency, '')
            || CASE WHEN channel = 'store' THEN ' at store ' || coalesce(CAST(location_id AS VARCHAR), '?')
                    ELSE ' via ' || channel END,
        CASE WHEN len(line_items) > 0 THEN line_items[1].product_id END, utm_campaign,
        CAST(order_id AS VARCHAR), NULL::VARCHAR, 'order_status_history', CAST(order_id AS VARCHAR) || ':' || status
    FROM typed WHERE event_type IS NOT NULL
)
SELECT * FROM web UNION ALL SELECT * FROM visits UNION ALL SELECT * FROM social UNION ALL SELECT * FROM orders;

CREATE OR REPLACE TABLE customer_timeline AS
WITH attributed AS (
    SELECT m.customer_key, r.*
    FROM rows r JOIN read_parquet('{silver}/identity_map/**/*.parquet', hive_partitioning = false) m
      ON r.identifier = m.identifier AND NOT m.is_shared
), ranked AS (
    SELECT *,
        row_number() OVER w AS seq,
        lag(occurred_at) OVER w AS prev,
        sum(CASE WHEN event_type IN ('order_placed', 'store_purchase') THEN 1 ELSE 0 END) OVER c AS purchase_n,
        sum(CASE WHEN event_type = 'visit' THEN 1 ELSE 0 END) OVER c AS visit_n,
        sum(CASE WHEN channel = 'social' THEN 1 ELSE 0 END) OVER c AS social_n,
        sum(CASE WHEN event_type IN ('review', 'share', 'mention') THEN 1 ELSE 0 END) OVER c AS adv_n
    FROM attributed
    WINDOW w AS (PARTITION BY customer_key ORDER BY occurred_at, channel, event_type, source_key),
           c AS (PARTITION BY customer_key ORDER BY occurred_at, channel, event_type, source_key
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), marked AS (
    SELECT *, nullif(concat_ws(',',
        CASE WHEN event_type = 'visit' AND visit_n = 1 THEN 'first_visit' END,
        CASE WHEN channel = 'social' AND social_n = 1 THEN 'first_social_touch' END,
        CASE WHEN event_type IN ('order_placed', 'store_purchase') AND purchase_n = 1 THEN 'first_purchase' END,
        CASE WHEN event_type IN ('order_placed', 'store_purchase') AND purchase_n = 2 THEN 'first_repeat_purchase' END,
        CASE WHEN event_type IN ('review', 'share', 'mention') AND adv_n = 1 THEN 'first_advocacy' END,
        CASE WHEN prev < occurred_at - INTERVAL 90 DAYS THEN 'reactivation' END), '') AS milestone
    FROM ranked
)
SELECT customer_key, seq, occurred_at, CAST(occurred_at AS DATE) AS occurred_date, channel, platform, event_type,
       summary, product_id, campaign, order_id, session_id, milestone IS NOT NULL AS is_milestone, milestone,
       identifier, source_table, source_key
FROM marked;

CREATE OR REPLACE TABLE customer_relationship AS
WITH kept AS (
    SELECT CAST(order_id AS VARCHAR) AS order_id, total_price AS kept_total
    FROM read_parquet('{silver}/orders/**/*.parquet', hive_partitioning = false)
    WHERE status NOT IN ('cancelled', 'refunded')
), t AS (
    SELECT tl.*, k.kept_total,
        event_type IN ('order_placed', 'store_purchase') AS purchase,
        max(CASE WHEN channel = 'social' THEN occurred_at END) OVER (
            PARTITION BY customer_key ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last_social
    FROM customer_timeline tl LEFT JOIN kept k ON tl.order_id = k.order_id
), platforms AS (
    SELECT customer_key, platform, count(*) AS n FROM customer_timeline WHERE channel = 'social'
    GROUP BY customer_key, platform
), per_platform AS (
    SELECT customer_key,
        map_from_entries(list(struct_pack(k := platform, v := n) ORDER BY platform)) AS engagement_by_platform,
        arg_max(platform, struct_pack(n := n, p := platform)) AS preferred_platform
    FROM platforms GROUP BY customer_key
), facts AS (
    SELECT customer_key,
        min(occurred_at) AS first_seen, max(occurred_at) AS last_seen,
        arg_min(struct_pack(c := channel, p := platform), seq).c AS acquisition_channel,
        arg_min(struct_pack(c := channel, p := platform), seq).p AS acquisition_platform,  -- NULLs included
        min(CASE WHEN purchase THEN occurred_at END) AS first_purchase_at,
        count(DISTINCT CASE WHEN purchase THEN order_id END) AS orders,
        count(DISTINCT CASE WHEN purchase AND kept_total IS NOT NULL THEN order_id END) AS kept_orders,
        coalesce(sum(CASE WHEN purchase THEN kept_total END), 0) AS revenue,
        count(*) AS interactions,
        sum(CASE WHEN event_type = 'visit' THEN 1 ELSE 0 END) AS visits,
        sum(CASE WHEN channel = 'social' THEN 1 ELSE 0 END) AS social_interactions,
        sum(CASE WHEN event_type = 'share' THEN 1 ELSE 0 END) AS shares,
        sum(CASE WHEN event_type = 'review' THEN 1 ELSE 0 END) AS reviews,
        sum(CASE WHEN event_type IN ('comment', 'mention', 'pin', 'repin') THEN 1 ELSE 0 END) AS ugc,
        sum(CASE WHEN event_type IN ('review', 'share', 'mention') THEN 1 ELSE 0 END) AS advocacy,
        count(DISTINCT CASE WHEN purchase AND last_social >= occurred_at - INTERVAL 7 DAYS THEN order_id END)
            AS social_influenced_orders
    FROM t GROUP BY customer_key
), scored AS (
    SELECT f.*, coalesce(p.engagement_by_platform, MAP {}::MAP(VARCHAR, BIGINT)) AS engagement_by_platform,
        p.preferred_platform,
        DATE '{as_of}' - CAST(last_seen AS DATE) AS days_since_last_interaction
    FROM facts f LEFT JOIN per_platform p USING (customer_key)
), rfm AS (
    SELECT customer_key,
        ntile(5) OVER (ORDER BY days_since_last_interaction DESC, customer_key) AS r_score,
        ntile(5) OVER (ORDER BY kept_orders, customer_key) AS f_score,
        ntile(5) OVER (ORDER BY revenue, customer_key) AS m_score
    FROM scored WHERE kept_orders > 0
)
SELECT s.customer_key, first_seen, last_seen, acquisition_channel, acquisition_platform, first_purchase_at, orders,
    kept_orders, revenue, interactions, visits, social_interactions, shares, reviews, ugc, advocacy,
    social_influenced_orders, engagement_by_platform, preferred_platform, days_since_last_interaction,
    -- half-up to the cent, in exact integer cents (a decimal division would go through a double here)
    CASE WHEN kept_orders > 0 THEN CAST((2 * CAST(revenue * 100 AS HUGEINT) + kept_orders) // (2 * kept_orders) AS DECIMAL(38, 0)) / 100 END
        AS average_order_value,
    r_score, f_score, m_score,
    CASE WHEN kept_orders > 0 AND days_since_last_interaction > 180 THEN 'lapsed'
         WHEN kept_orders > 0 AND days_since_last_interaction > 90 THEN 'at_risk'
         WHEN kept_orders > 0 AND advocacy > 0 THEN 'advocate'
         WHEN kept_orders >= 2 THEN 'repeat'
         WHEN kept_orders = 1 THEN 'customer'
         WHEN interactions >= 3 OR (visits > 0 AND social_interactions > 0) THEN 'engaged'
         ELSE 'prospect' END AS lifecycle_stage,
    CASE WHEN r_score IS NOT NULL THEN concat_ws('', r_score, f_score, m_score) END AS rfm_segment,
    DATE '{as_of}' AS as_of
FROM scored s LEFT JOIN rfm USING (customer_key);
