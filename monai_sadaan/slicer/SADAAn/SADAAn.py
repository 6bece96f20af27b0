"""3D Slicer scripted module SADAAn: absence-aware abdominal CT segmentation with presence calls.

Pick a CT volume, press Apply: the volume is exported to NIfTI, the SADAAn bundle's inference runs in a
subprocess (any Python with ``monai_sadaan`` installed, or Slicer's own), and the result is loaded as a
segmentation with one named, coloured segment per structure plus a presence table (present / ABSENT, presence
probability, confidence, volume). Everything that does not need Slicer lives in ``monai_sadaan.slicer.core``;
this file only wires it to Slicer's scene and widgets.

Add the folder holding this file to Slicer's module paths (Edit > Application Settings > Modules > Additional
module paths) and restart Slicer; see docs/slicer.md.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path

try:  # inside 3D Slicer
    import ctk
    import qt
    import slicer
    import vtk
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )

    IN_SLICER = True
except ImportError:  # outside Slicer the file still imports, so the pure helpers below can be used and tested
    ctk = qt = slicer = vtk = None
    ScriptedLoadableModule = ScriptedLoadableModuleLogic = ScriptedLoadableModuleTest = object  # type: ignore
    ScriptedLoadableModuleWidget = object  # type: ignore
    IN_SLICER = False

SETTINGS_BUNDLE_DIR = "SADAAn/BundleDir"
SETTINGS_PYTHON = "SADAAn/Python"
SETTINGS_DEVICE = "SADAAn/Device"
DEVICES = ("auto", "cpu", "cuda")


def repository_root() -> Path:
    """The checkout that holds this module: ``<root>/monai_sadaan/slicer/SADAAn/SADAAn.py``."""
    return Path(__file__).resolve().parents[3]


def default_bundle_dir() -> Path:
    """Where the SADAAn bundle sits in the checkout."""
    return repository_root() / "bundles" / "sadaan_abdominal_ct_segmentation"


def import_core():
    """Import ``monai_sadaan.slicer.core``, adding the checkout to ``sys.path`` when the package is not installed."""
    try:
        from monai_sadaan.slicer import core
    except ImportError:
        root = str(repository_root())
        if root not in sys.path:
            sys.path.insert(0, root)
        from monai_sadaan.slicer import core
    return core


def case_name_for(node_name: str) -> str:
    """A file-safe case name from a volume node's name (``"CT abdomen 2"`` -> ``"CT_abdomen_2"``)."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", node_name or "").strip("._-")
    return name or "volume"


#
# Module
#


class SADAAn(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "SADAAn"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["monai-sadaan contributors"]
        self.parent.helpText = (
            "Segments left and right kidney, liver, spleen and pancreas in abdominal CT and says which of them are "
            "absent (for example after nephrectomy or splenectomy). Absent structures appear as empty segments "
            "flagged in the segment list and as ABSENT in the presence table. Research use only."
        )
        self.parent.acknowledgementText = (
            "Built on MONAI (https://monai.io) and slicerio. SADAAn: Spatial Attention for Detection of Absent Anatomy."
        )


#
# Widget
#


class SADAAnWidget(ScriptedLoadableModuleWidget):
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = SADAAnLogic()
        settings = qt.QSettings()

        box = ctk.ctkCollapsibleButton()
        box.text = "Inputs"
        self.layout.addWidget(box)
        form = qt.QFormLayout(box)

        self.volumeSelector = slicer.qMRMLNodeComboBox()
        self.volumeSelector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.volumeSelector.selectNodeUponCreation = True
        self.volumeSelector.addEnabled = False
        self.volumeSelector.removeEnabled = False
        self.volumeSelector.noneEnabled = False
        self.volumeSelector.setMRMLScene(slicer.mrmlScene)
        self.volumeSelector.setToolTip("CT volume to segment.")
        form.addRow("Input volume:", self.volumeSelector)

        self.bundleDirEdit = ctk.ctkPathLineEdit()
        self.bundleDirEdit.filters = ctk.ctkPathLineEdit.Dirs
        self.bundleDirEdit.currentPath = settings.value(SETTINGS_BUNDLE_DIR, str(default_bundle_dir()))
        self.bundleDirEdit.setToolTip("Folder of the SADAAn bundle (holds configs/inference.json and models/).")
        form.addRow("Bundle folder:", self.bundleDirEdit)

        self.pythonEdit = ctk.ctkPathLineEdit()
        self.pythonEdit.filters = ctk.ctkPathLineEdit.Files | ctk.ctkPathLineEdit.Executable
        self.pythonEdit.currentPath = settings.value(SETTINGS_PYTHON, "")
        self.pythonEdit.setToolTip(
            "Python interpreter that has monai_sadaan installed (for example <checkout>/.venv/bin/python). "
            "Leave empty to use Slicer's own Python (then install monai_sadaan into it)."
        )
        form.addRow("Python:", self.pythonEdit)

        self.deviceCombo = qt.QComboBox()
        self.deviceCombo.addItems(list(DEVICES))
        self.deviceCombo.currentText = settings.value(SETTINGS_DEVICE, "auto")
        form.addRow("Device:", self.deviceCombo)

        self.applyButton = qt.QPushButton("Apply")
        self.applyButton.toolTip = "Run SADAAn on the selected volume."
        form.addRow(self.applyButton)

        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        form.addRow(self.statusLabel)

        resultBox = ctk.ctkCollapsibleButton()
        resultBox.text = "Presence"
        self.layout.addWidget(resultBox)
        resultLayout = qt.QVBoxLayout(resultBox)
        self.presenceTable = qt.QTableWidget()
        self.presenceTable.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)
        resultLayout.addWidget(self.presenceTable)
        self.layout.addStretch(1)

        self.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.volumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateButtons)
        self.updateButtons()

    def updateButtons(self, *_):
        self.applyButton.enabled = self.volumeSelector.currentNode() is not None

    def onApplyButton(self):
        settings = qt.QSettings()
        settings.setValue(SETTINGS_BUNDLE_DIR, self.bundleDirEdit.currentPath)
        settings.setValue(SETTINGS_PYTHON, self.pythonEdit.currentPath)
        settings.setValue(SETTINGS_DEVICE, self.deviceCombo.currentText)
        device = None if self.deviceCombo.currentText == "auto" else self.deviceCombo.currentText
        self.statusLabel.text = "Running SADAAn (the first run loads the model; this can take a minute)..."
        slicer.app.processEvents()
        with slicer.util.tryWithErrorDisplay("SADAAn failed.", waitCursor=True):
            try:
                _, tableNode, result = self.logic.process(
                    self.volumeSelector.currentNode(),
                    self.bundleDirEdit.currentPath,
                    python=self.pythonEdit.currentPath or None,
                    device=device,
                )
            finally:
                self.statusLabel.text = ""
            self.showPresence(result)
            absent = result.absent_structures
            if result.calls_withheld:
                self.statusLabel.text = "Done. The input is not CT: no presence call, nothing segmented. " + " ".join(
                    result.warnings
                )
            else:
                called = f"Absent: {', '.join(absent)}." if absent else "All structures present."
                self.statusLabel.text = " ".join(["Done.", called, *result.warnings])

    def showPresence(self, result):
        rows = import_core().presence_table(result)
        header, body = rows[0], rows[1:]
        self.presenceTable.clear()
        self.presenceTable.setColumnCount(len(header))
        self.presenceTable.setRowCount(len(body))
        self.presenceTable.setHorizontalHeaderLabels(header)
        for r, row in enumerate(body):
            for c, text in enumerate(row):
                item = qt.QTableWidgetItem(text)
                if row[1] == "ABSENT":
                    item.setForeground(qt.QBrush(qt.QColor("red")))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.presenceTable.setItem(r, c, item)
        self.presenceTable.resizeColumnsToContents()


#
# Logic
#


class SADAAnLogic(ScriptedLoadableModuleLogic):
    """Export the volume, run the bundle, load the segmentation and the presence table into the scene."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.core = import_core()

    def process(self, volumeNode, bundleDir, python=None, device=None, workDir=None):
        """Run SADAAn on ``volumeNode``.

        Args:
            volumeNode: vtkMRMLScalarVolumeNode (CT).
            bundleDir: the SADAAn bundle folder.
            python: interpreter with monai_sadaan installed; ``None`` uses Slicer's Python.
            device: ``"cpu"``, ``"cuda"`` or ``None`` (the bundle's choice).
            workDir: folder for the exported input and the outputs (default: a new folder in Slicer's temp path).

        Returns:
            (segmentation node, presence table node, core.CaseResult)
        """
        if volumeNode is None:
            raise ValueError("expected an input volume, got none")
        caseName = case_name_for(volumeNode.GetName())
        work = Path(workDir) if workDir else Path(tempfile.mkdtemp(prefix="SADAAn-", dir=slicer.app.temporaryPath))
        inputDir, outputDir = work / "input", work / "output"
        inputDir.mkdir(parents=True, exist_ok=True)
        inputPath = inputDir / f"{caseName}.nii.gz"
        self.exportVolume(volumeNode, inputPath)
        logging.info(f"SADAAn: running the bundle {bundleDir} on {inputPath}")
        results = self.core.run_inference(
            bundleDir,
            inputDir,
            outputDir,
            python=python or self.slicerPython(),
            device=device,
            poll=slicer.app.processEvents,
            # Slicer's launcher points PYTHONHOME/PYTHONPATH at Slicer's Python: keep them only for PythonSlicer
            env_remove=("PYTHONHOME", "PYTHONPATH") if python else (),
        )
        if caseName not in results:
            raise RuntimeError(f"the bundle wrote results for {sorted(results)}, expected {caseName!r}")
        result = results[caseName]
        segmentationNode = self.loadSegmentation(result, volumeNode)
        tableNode = self.presenceTableNode(result, name=f"{volumeNode.GetName()} SADAAn presence")
        return segmentationNode, tableNode, result

    @staticmethod
    def exportVolume(volumeNode, path):
        """Write the volume to NIfTI without changing where the node itself is stored."""
        if hasattr(slicer.util, "exportNode"):  # Slicer 5.2 and later
            ok = slicer.util.exportNode(volumeNode, str(path))
        else:  # saveNode repoints the node's storage node at the file: put the old file name back
            storageNode = volumeNode.GetStorageNode()
            previous = storageNode.GetFileName() if storageNode else None
            ok = slicer.util.saveNode(volumeNode, str(path))
            if storageNode and previous:
                storageNode.SetFileName(previous)
        if not ok:
            raise RuntimeError(f"could not export {volumeNode.GetName()} to {path}")

    @staticmethod
    def slicerPython():
        """Slicer's own Python interpreter (``PythonSlicer``, next to the Slicer executable)."""
        found = shutil.which("PythonSlicer")
        if not found:
            raise RuntimeError("could not find PythonSlicer; set the Python of an environment with monai_sadaan")
        return found

    def loadSegmentation(self, result, volumeNode=None):
        """Load ``result``'s .seg.nrrd: one named segment per structure, absent ones empty and flagged."""
        if result.segmentation_path is None:
            raise RuntimeError(
                f"the bundle wrote no .seg.nrrd for {result.case_name}; enable the Slicer segmentation output"
            )
        segmentationNode = slicer.util.loadSegmentation(str(result.segmentation_path))
        if volumeNode is not None:
            segmentationNode.SetName(f"{volumeNode.GetName()} SADAAn")
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
            segmentationNode.SetAndObserveTransformNodeID(volumeNode.GetTransformNodeID())
        segmentationNode.CreateClosedSurfaceRepresentation()
        return segmentationNode

    def presenceTableNode(self, result, name="SADAAn presence"):
        """A vtkMRMLTableNode with the presence table (shown in the Tables module, saved with the scene)."""
        rows = self.core.presence_table(result)
        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", name)
        table = tableNode.GetTable()
        for title in rows[0]:
            column = vtk.vtkStringArray()
            column.SetName(title)
            table.AddColumn(column)
        for row in rows[1:]:
            index = tableNode.AddEmptyRow()
            for c, text in enumerate(row):
                tableNode.SetCellText(index, c, text)
        return tableNode


#
# Test
#


class SADAAnTest(ScriptedLoadableModuleTest):
    """Runs in Slicer (Reload and Test). The end-to-end test needs the bundle folder and Python set in the module."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_CaseName()
        self.setUp()
        self.test_EndToEnd()

    def test_CaseName(self):
        self.assertEqual(case_name_for("CT abdomen / 2"), "CT_abdomen_2")
        self.assertEqual(case_name_for("..."), "volume")

    def test_EndToEnd(self):
        """A synthetic volume through the real bundle: five segments come back and the table has five rows."""
        import numpy as np

        settings = qt.QSettings()
        bundleDir = settings.value(SETTINGS_BUNDLE_DIR, str(default_bundle_dir()))
        python = settings.value(SETTINGS_PYTHON, "") or None
        if not (Path(bundleDir) / "configs" / "inference.json").is_file():
            self.delayDisplay(f"Skipped: no SADAAn bundle at {bundleDir}; set it in the module first")
            return
        self.delayDisplay("Running SADAAn on a synthetic volume")
        voxels = np.full((32, 48, 48), -100, dtype=np.int16)  # [K, J, I]
        voxels[8:24, 10:30, 8:22] = 60  # a soft-tissue block
        volumeNode = slicer.util.addVolumeFromArray(voxels, name="SADAAn test volume")
        volumeNode.SetSpacing(1.5, 1.5, 3.0)
        segmentationNode, tableNode, result = SADAAnLogic().process(volumeNode, bundleDir, python=python)
        segmentation = segmentationNode.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), len(result.presence))
        for row in result.presence:
            self.assertIsNotNone(segmentation.GetSegment(row["structure"]))
        self.assertEqual(tableNode.GetNumberOfRows(), len(result.presence))
        self.delayDisplay("Test passed")
