"""Deterministic Portuguese gazette prose (decrees, ordinances, procurement notices) for fixtures.

Everything is generated from a seed so a fixture's bytes, and therefore its MD5, are reproducible.
All characters are in cp1252, so the same text works in PDFs (WinAnsiEncoding), DOC and Latin-1 files.
"""

from __future__ import annotations

import random
import textwrap

MONTHS = ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro",
          "outubro", "novembro", "dezembro"]
SECRETARIAS = ["Educação", "Saúde", "Administração", "Finanças", "Assistência Social", "Obras e Urbanização",
               "Agricultura", "Cultura, Esporte e Lazer", "Meio Ambiente", "Infraestrutura"]
PEOPLE = ["José Antônio da Silva", "Maria das Graças Conceição", "João Batista Araújo", "Ana Lúcia Gonçalves",
          "Francisco de Assis Barbosa", "Luíza Helena Magalhães", "Sebastião Côrtes Lima",
          "Conceição Aparecida Brandão", "Antônio Carlos Simões", "Fábio Júnior Patrício"]
OBJECTS = ["aquisição de gêneros alimentícios para a merenda escolar",
           "contratação de empresa para pavimentação de vias públicas",
           "aquisição de medicamentos para as unidades básicas de saúde",
           "locação de veículos para o transporte escolar da zona rural",
           "prestação de serviços de manutenção da iluminação pública",
           "aquisição de material de expediente e de limpeza",
           "reforma e ampliação da Escola Municipal São José",
           "fornecimento de combustíveis para a frota municipal"]
CLAUSES = ["no uso das atribuições que lhe confere a Lei Orgânica do Município",
           "considerando o disposto na Lei Federal nº 14.133, de 1º de abril de 2021",
           "considerando a necessidade de garantir a continuidade dos serviços públicos essenciais",
           "tendo em vista o que consta do processo administrativo em epígrafe",
           "considerando a situação de emergência declarada em razão das chuvas",
           "com fundamento no artigo 37 da Constituição Federal"]


def format_date(day: int, month: int, year: int) -> str:
    """`15 de março de 2024`."""
    return f"{day} de {MONTHS[month - 1]} de {year}"


def act(rng: random.Random, municipality: str) -> list[str]:
    """One act as a list of paragraphs (title first)."""
    kind = rng.choice(["DECRETO", "PORTARIA", "AVISO DE LICITAÇÃO", "EXTRATO DE CONTRATO", "LEI MUNICIPAL"])
    number = f"{rng.randrange(1, 999):03d}/{rng.choice([2022, 2023, 2024])}"
    who = rng.choice(PEOPLE)
    sec = rng.choice(SECRETARIAS)
    obj = rng.choice(OBJECTS)
    date = format_date(rng.randrange(1, 29), rng.randrange(1, 13), rng.choice([2023, 2024]))
    value = f"R$ {rng.randrange(10, 990)}.{rng.randrange(0, 999):03d},{rng.randrange(0, 99):02d}"
    if kind == "AVISO DE LICITAÇÃO":
        body = [f"PREGÃO ELETRÔNICO Nº {number}",
                f"O Município de {municipality}, por intermédio da Secretaria Municipal de {sec}, torna "
                f"público que realizará licitação na modalidade pregão eletrônico, do tipo menor preço, "
                f"cujo objeto é a {obj}. A sessão pública ocorrerá em {date}, às 9h (horário de Brasília).",
                f"O edital está disponível no portal de compras do Município. Informações: comissão de "
                f"licitação, de segunda a sexta-feira, das 8h às 14h. Pregoeiro(a): {who}."]
    elif kind == "EXTRATO DE CONTRATO":
        body = [f"Contrato nº {number}. Contratante: Município de {municipality}. Objeto: {obj}. "
                f"Valor global: {value}. Vigência: doze meses a contar da assinatura. Fundamentação: "
                f"Lei nº 14.133/2021. Signatário: {who}, Secretário(a) Municipal de {sec}."]
    else:
        body = [f"O Prefeito do Município de {municipality}, {rng.choice(CLAUSES)}, e "
                f"{rng.choice(CLAUSES)}, RESOLVE:",
                f"Art. 1º Nomear {who} para exercer o cargo em comissão de Coordenador(a) na Secretaria "
                f"Municipal de {sec}, com lotação na sede do Município.",
                f"Art. 2º Fica autorizado o procedimento de {obj}, observada a dotação orçamentária própria.",
                "Art. 3º Esta norma entra em vigor na data de sua publicação, revogadas as disposições em "
                "contrário.",
                *([f"Art. 4º A fiscalização municipal observará a lei de crimes ambientais e a lei de "
                   f"agrotóxicos, cabendo à Secretaria Municipal de {sec} apurar as infrações e aplicar as "
                   f"sanções previstas, com apoio do IBAMA."] if kind == "LEI MUNICIPAL" else []),
                f"Gabinete do Prefeito, {date}."]
    return [f"{kind} Nº {number}", *body]


def paragraphs(seed: int, municipality: str, acts: int) -> list[str]:
    """`acts` acts of one municipality as a flat list of paragraphs."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(acts):
        out.extend(act(rng, municipality))
    return out


def wrap(paras: list[str], width: int = 95) -> list[str]:
    """Wrap paragraphs into lines of at most `width` characters, a blank line between paragraphs."""
    lines: list[str] = []
    for para in paras:
        lines.extend(textwrap.wrap(para, width) or [""])
        lines.append("")
    return lines


def paginate(lines: list[str], per_page: int) -> list[list[str]]:
    """Cut a list of lines into pages of at most `per_page` lines."""
    return [lines[i:i + per_page] for i in range(0, len(lines), per_page)] or [[]]


def line_pool(seed: int, *, width: int = 120, size: int = 4000) -> list[str]:
    """A pool of `size` non-empty wrapped lines from many municipalities, for padding big files."""
    rng = random.Random(seed)
    towns = ["Maceió", "Arapiraca", "Penedo", "São Miguel dos Campos", "Palmeira dos Índios", "Viçosa",
             "União dos Palmares", "Pão de Açúcar", "Piaçabuçu", "São José da Laje"]
    pool: list[str] = []
    while len(pool) < size:
        paras = act(rng, rng.choice(towns))
        pool.extend(line for para in paras for line in textwrap.wrap(para, width))
    return pool[:size]
