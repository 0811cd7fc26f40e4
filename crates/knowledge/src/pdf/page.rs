//! One page's content stream walked into lines: the graphics and text state that place text
//! (the current transform, `q`/`Q`, text and line matrices, font size, spacing, leading and
//! rise), the page's fonts (encodings via lopdf, glyph widths from `/Widths` or `/W` to know
//! where drawn text ends) and the forms it draws. Drawn text on one baseline joins a line, a
//! space put between runs that are apart by more than 0.15 of the font size (or a `TJ` shift
//! of more than 150 thousandths). Work is bounded: operations, text, forms, saved graphics
//! states and decoded bytes per page, and the nesting of forms.

use std::collections::{BTreeMap, HashMap};

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId, Stream};

use super::MAX_STREAM_BYTES;

/// The most content-stream operations read on one page, forms included.
const MAX_PAGE_OPERATIONS: usize = 1_000_000;
/// The most forms (`Do` of a form XObject) drawn on one page, and how deep they nest.
const MAX_PAGE_FORMS: usize = 256;
const MAX_FORM_DEPTH: usize = 4;
/// The most text kept from one page; a dense page holds about 10 KB.
const MAX_PAGE_TEXT: usize = 256 << 10;
/// How many saved graphics states (`q`) are kept; deeper saves are counted, not kept.
const MAX_SAVED_STATES: usize = 64;

/// The lines of one page, in drawing order.
pub(super) fn page_lines(document: &Document, page_id: ObjectId) -> lopdf::Result<Vec<Line>> {
    let content = document.get_page_content_with_limit(page_id, MAX_STREAM_BYTES)?;
    let (inline, referenced) = document.get_page_resources(page_id)?;
    let mut resources: Vec<&Dictionary> = inline.into_iter().collect();
    resources.extend(
        referenced
            .iter()
            .filter_map(|id| document.get_dictionary(*id).ok()),
    );
    let scope = Scope::new(document, &resources);
    let mut reader = PageReader {
        document,
        lines: Vec::new(),
        line: None,
        pen_x: 0.0,
        operations: 0,
        forms: 0,
        content_bytes: content.len(),
        text_bytes: 0,
    };
    reader.run(&content, &scope, 0, &mut State::default());
    reader.lines.extend(reader.line.take());
    Ok(reader.lines)
}

/// Text drawn on one baseline, in device space (y up).
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) text: String,
    pub(super) y: f32,
    pub(super) x_start: f32,
    pub(super) x_end: f32,
    /// The font size, the largest on the line.
    pub(super) size: f32,
}

/// An affine transform `[a b c d e f]`, as PDF writes them (row vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translation(x: f32, y: f32) -> Self {
        Matrix([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// The matrix of six numbers.
    fn from_operands(operands: &[Object]) -> Option<Self> {
        let mut out = [0.0; 6];
        for (slot, operand) in out.iter_mut().zip(operands) {
            *slot = operand.as_float().ok()?;
        }
        (operands.len() >= 6).then_some(Matrix(out))
    }

    /// This transform followed by `then`.
    fn then(self, then: Matrix) -> Self {
        let [a, b, c, d, e, f] = self.0;
        let [na, nb, nc, nd, ne, nf] = then.0;
        Matrix([
            a * na + b * nc,
            a * nb + b * nd,
            c * na + d * nc,
            c * nb + d * nd,
            e * na + f * nc + ne,
            e * nb + f * nd + nf,
        ])
    }

    fn apply(self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (x * a + y * c + e, x * b + y * d + f)
    }
}

/// The graphics and text state that placing text depends on.
#[derive(Debug, Clone)]
struct State {
    ctm: Matrix,
    text_matrix: Matrix,
    line_matrix: Matrix,
    font: Option<Vec<u8>>,
    font_size: f32,
    char_spacing: f32,
    word_spacing: f32,
    horizontal_scale: f32,
    leading: f32,
    rise: f32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            ctm: Matrix::IDENTITY,
            text_matrix: Matrix::IDENTITY,
            line_matrix: Matrix::IDENTITY,
            font: None,
            font_size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            horizontal_scale: 1.0,
            leading: 0.0,
            rise: 0.0,
        }
    }
}

impl State {
    /// `Td`: the start of the next line, offset from the start of this one.
    fn next_line(&mut self, x: f32, y: f32) {
        self.line_matrix = Matrix::translation(x, y).then(self.line_matrix);
        self.text_matrix = self.line_matrix;
    }

    /// Text space to device space.
    fn to_device(&self) -> Matrix {
        self.text_matrix.then(self.ctm)
    }
}

/// The fonts and forms a content stream can name.
struct Scope<'a> {
    fonts: HashMap<Vec<u8>, Font<'a>>,
    xobjects: Vec<&'a Dictionary>,
}

impl<'a> Scope<'a> {
    /// The scope of resource dictionaries, the first naming a font winning.
    fn new(document: &'a Document, resources: &[&'a Dictionary]) -> Self {
        let mut fonts = HashMap::new();
        let mut xobjects = Vec::new();
        for resource in resources {
            let category = |key: &[u8]| {
                resource
                    .get_deref(key, document)
                    .and_then(Object::as_dict)
                    .ok()
            };
            if let Some(font_dictionary) = category(b"Font") {
                for (name, value) in font_dictionary.iter() {
                    if fonts.contains_key(name) {
                        continue;
                    }
                    let font = document
                        .dereference(value)
                        .and_then(|(_, font)| font.as_dict());
                    if let Some(font) = font.ok().and_then(|font| Font::new(document, font)) {
                        fonts.insert(name.clone(), font);
                    }
                }
            }
            xobjects.extend(category(b"XObject"));
        }
        Self { fonts, xobjects }
    }

    /// The form XObject called `name`.
    fn form(&self, document: &'a Document, name: &[u8]) -> Option<&'a Stream> {
        self.xobjects.iter().find_map(|xobjects| {
            let stream = xobjects
                .get_deref(name, document)
                .and_then(Object::as_stream)
                .ok()?;
            let subtype = stream.dict.get(b"Subtype").and_then(Object::as_name).ok()?;
            (subtype == b"Form").then_some(stream)
        })
    }
}

/// What reading a font's text needs: its encoding and how wide its glyphs are.
struct Font<'a> {
    encoding: Encoding<'a>,
    /// Whether codes are two bytes (a composite font), else one.
    two_byte: bool,
    /// Glyph widths in thousandths of the font size, by the first code of a run of codes.
    widths: BTreeMap<u32, (u32, Widths)>,
    default_width: f32,
}

/// The widths of a run of codes.
enum Widths {
    Each(Vec<f32>),
    All(f32),
}

impl<'a> Font<'a> {
    fn new(document: &'a Document, font: &'a Dictionary) -> Option<Self> {
        let encoding = font
            .get_font_encoding_with_limit(document, MAX_STREAM_BYTES)
            .ok()?;
        let number = |object: &Object| document.dereference(object).ok()?.1.as_float().ok();
        let array = |dictionary: &'a Dictionary, key: &[u8]| {
            dictionary
                .get_deref(key, document)
                .and_then(Object::as_array)
                .ok()
        };
        let two_byte = font.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Type0");
        let mut widths = BTreeMap::new();
        // Glyphs of unknown width are estimated a little narrow: a word drawn in pieces then
        // gets a stray space rather than words drawn apart losing theirs.
        let mut default_width = 400.0;
        if two_byte {
            let descendant = array(font, b"DescendantFonts")
                .and_then(|fonts| fonts.first())
                .and_then(|descendant| document.dereference(descendant).ok())
                .and_then(|(_, descendant)| descendant.as_dict().ok());
            if let Some(descendant) = descendant {
                default_width = descendant
                    .get(b"DW")
                    .ok()
                    .and_then(number)
                    .unwrap_or(1000.0);
                let entries = array(descendant, b"W")
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                read_cid_widths(entries, &number, &mut widths);
            }
        } else if let Some(entries) = array(font, b"Widths") {
            let first = font.get(b"FirstChar").ok().and_then(number).unwrap_or(0.0) as u32;
            let each: Vec<f32> = entries.iter().map(|w| number(w).unwrap_or(0.0)).collect();
            let last = first.saturating_add(each.len().saturating_sub(1) as u32);
            widths.insert(first, (last, Widths::Each(each)));
        }
        Some(Self {
            encoding,
            two_byte,
            widths,
            default_width,
        })
    }

    /// How far `bytes` move the pen, in unscaled text space.
    fn advance(&self, bytes: &[u8], state: &State) -> f32 {
        let codes: Vec<u32> = if self.two_byte {
            bytes
                .chunks(2)
                .map(|pair| {
                    pair.iter()
                        .fold(0, |code, byte| code * 256 + u32::from(*byte))
                })
                .collect()
        } else {
            bytes.iter().map(|byte| u32::from(*byte)).collect()
        };
        let mut total = 0.0;
        for code in codes {
            let width = self.width(code) / 1000.0 * state.font_size;
            let word = if !self.two_byte && code == 32 {
                state.word_spacing
            } else {
                0.0
            };
            total += (width + state.char_spacing + word) * state.horizontal_scale;
        }
        total
    }

    fn width(&self, code: u32) -> f32 {
        let found = self
            .widths
            .range(..=code)
            .next_back()
            .and_then(|(first, (last, widths))| {
                if code > *last {
                    return None;
                }
                match widths {
                    Widths::Each(each) => each.get((code - first) as usize).copied(),
                    Widths::All(width) => Some(*width),
                }
            });
        found
            .filter(|width| *width > 0.0)
            .unwrap_or(self.default_width)
    }
}

/// A composite font's `/W`: `first [w1 w2 …]` or `first last w`.
fn read_cid_widths(
    entries: &[Object],
    number: &dyn Fn(&Object) -> Option<f32>,
    widths: &mut BTreeMap<u32, (u32, Widths)>,
) {
    let mut idx = 0;
    while idx + 1 < entries.len() {
        let Some(first) = number(&entries[idx]) else {
            return;
        };
        let first = first as u32;
        if let Ok(each) = entries[idx + 1].as_array() {
            let each: Vec<f32> = each.iter().map(|w| number(w).unwrap_or(0.0)).collect();
            let last = first.saturating_add(each.len().saturating_sub(1) as u32);
            widths.insert(first, (last, Widths::Each(each)));
            idx += 2;
        } else {
            let last = number(&entries[idx + 1]);
            let width = entries.get(idx + 2).and_then(number);
            if let (Some(last), Some(width)) = (last, width) {
                widths.insert(first, (last as u32, Widths::All(width)));
            }
            idx += 3;
        }
    }
}

/// A walk through a page's content that collects its lines.
struct PageReader<'a> {
    document: &'a Document,
    lines: Vec<Line>,
    line: Option<Line>,
    /// Where the text drawn last ends, in device space.
    pen_x: f32,
    operations: usize,
    forms: usize,
    content_bytes: usize,
    text_bytes: usize,
}

impl<'a> PageReader<'a> {
    fn run(&mut self, content: &[u8], scope: &Scope<'a>, depth: usize, state: &mut State) {
        let mut saved = Vec::new();
        let mut unsaved = 0_usize;
        for operation in Content::decode_iter(content) {
            // Content after a syntax error is lost; the text before it is kept.
            let Ok(operation) = operation else {
                break;
            };
            self.operations += 1;
            if self.operations > MAX_PAGE_OPERATIONS || self.text_bytes > MAX_PAGE_TEXT {
                break;
            }
            let operands = operation.operands.as_slice();
            let number = |idx: usize| {
                operands
                    .get(idx)
                    .and_then(|operand| operand.as_float().ok())
                    .unwrap_or(0.0)
            };
            let string = |idx: usize| operands.get(idx).and_then(|operand| operand.as_str().ok());
            match operation.operator.as_str() {
                "q" if saved.len() < MAX_SAVED_STATES => saved.push(state.clone()),
                "q" => unsaved += 1,
                "Q" if unsaved > 0 => unsaved -= 1,
                "Q" => {
                    if let Some(restored) = saved.pop() {
                        *state = restored;
                    }
                }
                "cm" => {
                    if let Some(matrix) = Matrix::from_operands(operands) {
                        state.ctm = matrix.then(state.ctm);
                    }
                }
                "BT" => {
                    state.text_matrix = Matrix::IDENTITY;
                    state.line_matrix = Matrix::IDENTITY;
                }
                "Tf" => {
                    state.font = operands
                        .first()
                        .and_then(|name| name.as_name().ok())
                        .map(<[u8]>::to_vec);
                    state.font_size = number(1);
                }
                "Tc" => state.char_spacing = number(0),
                "Tw" => state.word_spacing = number(0),
                "Tz" => state.horizontal_scale = number(0) / 100.0,
                "TL" => state.leading = number(0),
                "Ts" => state.rise = number(0),
                "Td" => state.next_line(number(0), number(1)),
                "TD" => {
                    state.leading = -number(1);
                    state.next_line(number(0), number(1));
                }
                "Tm" => {
                    if let Some(matrix) = Matrix::from_operands(operands) {
                        state.text_matrix = matrix;
                        state.line_matrix = matrix;
                    }
                }
                "T*" => state.next_line(0.0, -state.leading),
                "Tj" => {
                    if let Some(bytes) = string(0) {
                        self.show(scope, state, bytes);
                    }
                }
                "'" | "\"" => {
                    let text_idx = if operation.operator == "'" {
                        0
                    } else {
                        state.word_spacing = number(0);
                        state.char_spacing = number(1);
                        2
                    };
                    state.next_line(0.0, -state.leading);
                    if let Some(bytes) = string(text_idx) {
                        self.show(scope, state, bytes);
                    }
                }
                "TJ" => {
                    let items = operands.first().and_then(|items| items.as_array().ok());
                    for item in items.into_iter().flatten() {
                        match item.as_str() {
                            Ok(bytes) => self.show(scope, state, bytes),
                            Err(_) => self.shift(state, item.as_float().unwrap_or(0.0)),
                        }
                    }
                }
                "Do" if depth < MAX_FORM_DEPTH => {
                    if let Some(name) = operands.first().and_then(|name| name.as_name().ok()) {
                        self.form(scope, name, depth, state);
                    }
                }
                _ => {}
            }
        }
    }

    /// Draws a form XObject: its content in its own resources (or the page's), placed by its
    /// matrix.
    fn form(&mut self, scope: &Scope<'a>, name: &[u8], depth: usize, state: &State) {
        self.forms += 1;
        if self.forms > MAX_PAGE_FORMS {
            return;
        }
        let Some(stream) = scope.form(self.document, name) else {
            return;
        };
        let budget = MAX_STREAM_BYTES.saturating_sub(self.content_bytes);
        let Ok(content) = stream.get_plain_content_with_limit(budget) else {
            return;
        };
        self.content_bytes += content.len();
        let mut inner = state.clone();
        let matrix = stream.dict.get(b"Matrix").and_then(Object::as_array);
        if let Some(matrix) = matrix.ok().and_then(|m| Matrix::from_operands(m)) {
            inner.ctm = matrix.then(state.ctm);
        }
        let resources = stream
            .dict
            .get_deref(b"Resources", self.document)
            .and_then(Object::as_dict);
        match resources {
            Ok(resources) => {
                let own = Scope::new(self.document, &[resources]);
                self.run(&content, &own, depth + 1, &mut inner);
            }
            Err(_) => self.run(&content, scope, depth + 1, &mut inner),
        }
    }

    /// `Tj`: draws a string where the text matrix says, moving it past the string.
    fn show(&mut self, scope: &Scope<'a>, state: &mut State, bytes: &[u8]) {
        let Some(font) = state.font.as_ref().and_then(|name| scope.fonts.get(name)) else {
            return;
        };
        let device = state.to_device();
        let (x, y) = device.apply(0.0, state.rise);
        let [_, _, c, d, _, _] = device.0;
        let size = (state.font_size * c.hypot(d)).abs();
        let mut text = String::new();
        // Codes the font cannot map are left out; the text around them is still read.
        let _ = font.encoding.write_to_string(bytes, &mut text);
        let advance = font.advance(bytes, state);
        state.text_matrix = Matrix::translation(advance, 0.0).then(state.text_matrix);
        let (end_x, _) = state.to_device().apply(0.0, state.rise);
        self.text_bytes += text.len();
        self.place(text, x, y, end_x, size);
    }

    /// A `TJ` adjustment: moves the pen back by `thousandths` of the font size. A move forward
    /// of more than 0.15 of it is a space between words; less is kerning.
    fn shift(&mut self, state: &mut State, thousandths: f32) {
        let shift = -thousandths / 1000.0 * state.font_size * state.horizontal_scale;
        state.text_matrix = Matrix::translation(shift, 0.0).then(state.text_matrix);
        if let Some(line) = &mut self.line {
            if thousandths < -150.0 && !line.text.ends_with(char::is_whitespace) {
                line.text.push(' ');
            }
        }
        self.pen_x = state.to_device().apply(0.0, state.rise).0;
    }

    /// Adds drawn text to the line on its baseline, or starts a new line.
    fn place(&mut self, text: String, x: f32, y: f32, end_x: f32, size: f32) {
        let pen_x = std::mem::replace(&mut self.pen_x, end_x);
        match &mut self.line {
            Some(line) if (y - line.y).abs() <= 0.5 * size.max(line.size) => {
                let gap = x - pen_x;
                let apart = gap > 0.15 * size || gap < -size;
                if apart
                    && !line.text.ends_with(char::is_whitespace)
                    && !text.starts_with(char::is_whitespace)
                {
                    line.text.push(' ');
                }
                line.text.push_str(&text);
                line.x_start = line.x_start.min(x);
                line.x_end = line.x_end.max(end_x);
                line.size = line.size.max(size);
            }
            _ if text.trim().is_empty() => {}
            _ => {
                self.lines.extend(self.line.take());
                self.line = Some(Line {
                    text,
                    y,
                    x_start: x,
                    x_end: end_x,
                    size,
                });
            }
        }
    }
}
