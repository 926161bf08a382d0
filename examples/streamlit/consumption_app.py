"""Consumption monitoring dashboard (five pages), on `anomaly` and the SQLite
database that `anomaly consumption simulate --db` and `anomaly consumption
watch` fill.

    anomaly consumption simulate --db sqlite:energy.db --clients 50 --days 60
    anomaly consumption watch --db sqlite:energy.db --max-iterations 1
    ANOMALY_DB=energy.db streamlit run examples/streamlit/consumption_app.py
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import streamlit as st

from anomaly import plot

DB = Path(os.environ.get("ANOMALY_DB", "energy.db").removeprefix("sqlite:"))
PAGES = ["Resumen", "Cliente", "Mensual", "Anomalías", "Mapas de calor"]
SEVERITIES = ["crítica", "alta", "media", "baja"]
TYPES = ["plantation", "flat", "night_use", "spike", "outlier"]

st.set_page_config(page_title="Consumo eléctrico", layout="wide")


@st.cache_data(ttl=30)
def query(sql: str, params: tuple[object, ...] = ()) -> pd.DataFrame:
    with sqlite3.connect(DB) as conn:
        return pd.read_sql_query(sql, conn, params=params)


def has_table(name: str) -> bool:
    return not query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).empty


def clients() -> pd.DataFrame:
    return query(
        "SELECT client_id, COUNT(*) AS lecturas, SUM(is_anomaly) AS anomalias, "
        "SUM(severity = 'crítica') AS criticas, MAX(score) AS score_max, ROUND(SUM(kwh), 1) AS kwh "
        "FROM consumo_anomalias GROUP BY client_id ORDER BY anomalias DESC, client_id"
    )


def overview() -> None:
    st.header("Resumen")
    stats = clients()
    total, flagged = int(stats["lecturas"].sum()), int(stats["anomalias"].sum())
    cols = st.columns(4)
    cols[0].metric("Clientes", len(stats))
    cols[1].metric("Lecturas", f"{total:,}")
    cols[2].metric("Anomalías", f"{flagged:,}", f"{100 * flagged / max(total, 1):.2f}%", delta_color="inverse")
    cols[3].metric("Clientes con críticas", int((stats["criticas"] > 0).sum()))
    st.subheader("Top 10 clientes anómalos")
    st.dataframe(stats.head(10), hide_index=True)
    if st.button("Recalcular (anomaly consumption watch)"):
        cli = os.environ.get("ANOMALY_CLI", "anomaly")
        try:
            proc = subprocess.run(
                [cli, "consumption", "watch", "--db", f"sqlite:{DB}", "--max-iterations", "1", "--interval", "10ms", "-q"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        except FileNotFoundError:
            st.error(f"`{cli}` not found: install the CLI or set ANOMALY_CLI")
            return
        query.clear()
        if proc.returncode == 0:
            st.success("Recalculado")
        else:
            st.error(proc.stderr[-500:])


def client_page() -> None:
    st.header("Cliente")
    ids = clients()["client_id"].tolist()
    client = st.selectbox("Cliente", ids)
    history = query(
        "SELECT timestamp, kwh, is_anomaly, types, score, severity FROM consumo_anomalias WHERE client_id = ? "
        "ORDER BY timestamp",
        (client,),
    )
    history["timestamp"] = pd.to_datetime(history["timestamp"])
    st.line_chart(history.set_index("timestamp")["kwh"])
    st.dataframe(history[history["is_anomaly"] == 1], hide_index=True)


def monthly_page() -> None:
    st.header("Análisis mensual")
    months = query("SELECT * FROM consumo_mensual ORDER BY month, client_id")
    st.bar_chart(months.groupby("month")[["anomalies", "critical"]].sum())
    if "suspicion" in months:
        # Each month's clients ranked by suspicion (from their episodes), with the rules behind it.
        st.subheader("Clientes sospechosos por mes")
        ranked = months[months["suspicious"] == 1].sort_values(["month", "suspicion"], ascending=[False, False])
        st.dataframe(ranked[["month", "client_id", "suspicion", "episodes", "severe_episodes", "rules"]], hide_index=True)
    st.dataframe(months, hide_index=True)


def anomalies_page() -> None:
    st.header("Anomalías")
    severity = st.multiselect("Severidad", SEVERITIES, default=SEVERITIES[:2])
    if has_table("consumo_episodios"):
        # Episodes first: one alert per run of a rule's flags, what an analyst acts on.
        st.subheader("Episodios")
        types = st.multiselect("Tipo", TYPES, default=TYPES)
        marks, kinds = ",".join("?" * len(severity)) or "''", ",".join("?" * len(types)) or "''"
        episodes = query(
            f"SELECT client_id, type, start_time, end_time, readings, peak_score, peak_severity, kwh_above_baseline "
            f"FROM consumo_episodios WHERE peak_severity IN ({marks}) AND type IN ({kinds}) "
            f"ORDER BY peak_score DESC, start_time DESC",
            (*severity, *types),
        )
        st.caption(f"{len(episodes)} episodios")
        st.dataframe(episodes, hide_index=True)
        st.download_button("Descargar episodios", episodes.to_csv(index=False), "episodios.csv", "text/csv")
    st.subheader("Lecturas")
    min_score = st.slider("Score mínimo", 0.0, 1.0, 0.5)
    marks = ",".join("?" * len(severity)) or "''"
    table = query(
        f"SELECT client_id, timestamp, kwh, types, score, severity FROM consumo_anomalias "
        f"WHERE is_anomaly = 1 AND severity IN ({marks}) AND score >= ? ORDER BY score DESC",
        (*severity, min_score),
    )
    st.caption(f"{len(table)} lecturas")
    st.dataframe(table, hide_index=True)
    st.download_button("Descargar lecturas", table.to_csv(index=False), "anomalias.csv", "text/csv")


def heatmaps_page() -> None:
    st.header("Mapas de calor")
    ids = ["(todos)"] + clients()["client_id"].tolist()
    choice = st.selectbox("Cliente", ids, key="heat_client")
    readings = query("SELECT client_id, timestamp, kwh FROM consumo_anomalias")
    fig = plot.consumption_heatmap(readings, client=None if choice == "(todos)" else choice)
    st.pyplot(fig)


# A page can be linked to: ?page=Anomalías
requested = st.query_params.get("page")
page = st.sidebar.radio("Página", PAGES, index=PAGES.index(requested) if requested in PAGES else 0)
if not DB.exists():
    st.error(f"No database at {DB}: run `anomaly consumption simulate --db sqlite:{DB}` and `anomaly consumption watch`")
else:
    {"Resumen": overview, "Cliente": client_page, "Mensual": monthly_page, "Anomalías": anomalies_page,
     "Mapas de calor": heatmaps_page}[page]()  # fmt: skip
